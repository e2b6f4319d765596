"""Rule tables: a learned policy as reviewable, deterministic rules (torch-free evaluator).

Load and decide with plain Python + numpy — no torch, no SB3, no pickle, nothing that
executes code from a file; ``import invalloc.rules`` imports numpy and the standard library only
(the simulator loads when a table first acts on one)::

    from invalloc.rules import load_rule_policy
    policy = load_rule_policy("rules/retail")        # verifies files, manifest and audit log first
    # a Policy: invalloc simulate --policy rules:rules/retail

Extraction (imitation of a trained agent) lives in :mod:`invalloc.export`.
"""

from typing import TYPE_CHECKING, Any

from invalloc.env.feature_definitions import FEATURE_SET_VERSION, Feature
from invalloc.rules.formats import read_csv, read_dmn, read_json, write_csv, write_dmn, write_json
from invalloc.rules.manifest import load_rule_table, verify_directory, verify_rule_table
from invalloc.rules.policy import RuleTablePolicy, load_rule_policy
from invalloc.rules.table import DEFAULT_MAX_RULES, Output, RuleTable, RuleTableError

if TYPE_CHECKING:
    from invalloc.env.features import FeatureSet

__all__ = [
    "DEFAULT_MAX_RULES",
    "FEATURE_SET_VERSION",
    "Feature",
    "FeatureSet",
    "Output",
    "RuleTable",
    "RuleTableError",
    "RuleTablePolicy",
    "load_rule_policy",
    "load_rule_table",
    "read_csv",
    "read_dmn",
    "read_json",
    "verify_directory",
    "verify_rule_table",
    "write_csv",
    "write_dmn",
    "write_json",
]


def __getattr__(name: str) -> Any:
    """``FeatureSet`` computes features from a simulator: it loads the simulator on first use."""
    if name == "FeatureSet":
        from invalloc.env.features import FeatureSet

        return FeatureSet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
