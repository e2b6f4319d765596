"""Policy comparison for planners: paired evaluation on common random numbers, KPI tables,
plots, an HTML report and one MLflow run per comparison.

>>> from invalloc.evaluation import run_comparison, write_report, print_tables  # doctest: +SKIP
>>> comparison = run_comparison("tiny", ["base_stock", "priority"], episodes=10, seed=10_000)  # doctest: +SKIP
>>> print_tables(comparison)  # doctest: +SKIP
>>> write_report(comparison, Path("comparison_tiny"))  # doctest: +SKIP
PosixPath('comparison_tiny/report.html')

Submodules load pandas, scipy, matplotlib and MLflow; importing this package loads only
what is used, when it is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Public name → submodule; loaded on first use so `invalloc --help` stays quick.
_EXPORTS = {
    "Comparison": "compare",
    "ComparisonError": "compare",
    "EpisodeResult": "compare",
    "run_comparison": "compare",
    "print_tables": "report",
    "write_report": "report",
    "PolicySpec": "specs",
    "parse_spec": "specs",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'invalloc.evaluation' has no attribute {name!r}")
    return getattr(import_module(f"invalloc.evaluation.{_EXPORTS[name]}"), name)


__all__ = [
    "Comparison",
    "ComparisonError",
    "EpisodeResult",
    "PolicySpec",
    "parse_spec",
    "print_tables",
    "run_comparison",
    "write_report",
]
