"""One MLflow run per comparison: settings as params, headline numbers as metrics, the tables
as artifacts (CSV under ``tables/`` and MLflow tables ``tables/*.json``), the plots as figures
(``figures/*.png``) and the whole HTML report folder (``report/``).

The run is written through an :class:`mlflow.MlflowClient` bound to the store rather than
the fluent API, so a caller's active run (``invalloc quickstart`` may have one) is left alone.
A run that fails while logging ends ``FAILED``.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

from invalloc.evaluation.results import Comparison

#: The MLflow experiment that holds every comparison run.
EXPERIMENT_NAME = "compare"
# MLflow keys allow letters, digits, '_', '-', '.', ' ', ':' and '/': spec texts may hold others.
_KEY_UNSAFE = re.compile(r"[^\w\-. :/]")
_PARAM_LIMIT = 6000  # characters of a param value MLflow stores


def metric_key(*parts: str) -> str:
    """``compare/base_stock@tuned.yaml/total_reward`` → ``compare/base_stock_tuned.yaml/total_reward``."""
    return "/".join(_KEY_UNSAFE.sub("_", part) for part in parts)


def log_comparison(comparison: Comparison, tracking_uri: str, rendered: Path | None = None) -> str:
    """Log ``comparison`` as one run of experiment :data:`EXPERIMENT_NAME`; returns its run id.

    Sets ``comparison.mlflow_run_id`` (the logged report shows it). The report folder is drawn
    into ``rendered`` (an existing empty folder) and left there, so that ``write_report`` can
    copy it instead of drawing it again; None: a temporary folder.
    """
    import mlflow
    from mlflow.entities import Metric, Param

    from invalloc.evaluation.report import render_folder
    from invalloc.tracking import experiment_id, owned_run, standard_tags

    client = mlflow.MlflowClient(tracking_uri)
    experiment = experiment_id(EXPERIMENT_NAME, tracking_uri)
    tags = {
        **standard_tags(comparison.scenario_digest),
        "invalloc.command": "compare",
        "invalloc.scenario": comparison.scenario,
        "invalloc.reference": comparison.reference[:_PARAM_LIMIT],
    }
    seeds = f"{comparison.seed}-{comparison.seed + comparison.episodes - 1}"
    name = f"compare {comparison.scenario} · {len(comparison.specs)} policies · seeds {seeds}"
    with owned_run(client, tracking_uri, experiment, name, tags) as run:
        run_id = run.info.run_id
        comparison.mlflow_run_id = run_id
        params = {
            "scenario": comparison.scenario,
            "scenario_source": comparison.scenario_source,
            "episodes": comparison.episodes,
            "seed": comparison.seed,
            "reference": comparison.reference,
            "oracle": comparison.oracle or "",
            "check_invariants": comparison.check_invariants,
            "processes": comparison.processes,
            **{f"policy_{i}": spec.text for i, spec in enumerate(comparison.specs)},
            **{f"label_{i}": comparison.label(spec.text) for i, spec in enumerate(comparison.specs)},
            **{key: value for key, value in comparison.extra.items() if key in ("demand_trace", "demand_trace_sha256")},
        }
        now = int(time.time() * 1000)
        metrics = []
        for row in comparison.kpis.itertuples(index=False):
            if row.kpi in ("total_reward", "profit", "fill_rate"):
                metrics.append(Metric(metric_key("compare", row.policy, row.kpi), float(row.mean), now, 0))
        for row in comparison.paired.itertuples(index=False):
            if row.kpi in ("total_reward", "profit"):
                for stat in ("mean_difference", "ci_low", "ci_high", "p_value"):
                    value = float(getattr(row, stat))
                    if value == value:  # MLflow rejects NaN in some stores
                        metrics.append(Metric(metric_key("compare", row.policy, f"{row.kpi}_{stat}"), value, now, 0))
        if comparison.gap is not None:
            for row in comparison.gap.itertuples(index=False):
                if row.gap_closed == row.gap_closed:
                    key = metric_key("compare", row.policy, "gap_closed")
                    metrics.append(Metric(key, float(row.gap_closed), now, 0))
        client.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(key, str(value)[:_PARAM_LIMIT]) for key, value in params.items()],
        )
        with tempfile.TemporaryDirectory(prefix="invalloc-compare-") as folder:
            report = rendered if rendered is not None else Path(folder) / "report"
            report.mkdir(exist_ok=True)
            drawn = render_folder(comparison, report)
            for stem, figure in drawn.items():
                client.log_figure(run_id, figure, f"figures/{stem}.png")
            for csv in sorted(report.glob("*.csv")):
                client.log_artifact(run_id, str(csv), "tables")
            client.log_table(run_id, comparison.kpis, "tables/kpis.json")
            client.log_table(run_id, comparison.paired, "tables/paired_differences.json")
            if comparison.gap is not None:
                client.log_table(run_id, comparison.gap, "tables/gap_closed.json")
            client.log_artifacts(run_id, str(report), "report")
    return run_id


__all__ = ["EXPERIMENT_NAME", "log_comparison", "metric_key"]
