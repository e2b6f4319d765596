"""Rule export targets on `retail`: fidelity, profit retention, rule count, evaluator speed.

Exports a rule table from a trained policy (``--run RUN_ID`` from the tracking store, or a
teacher trained here from ``--experiment``, by default the quickstart's ``retail_ppo``),
then measures the torch-free evaluator on one million states, all in one run, and prints
each figure against its target::

    .venv/bin/python scripts/bench_rules.py --run RUN_ID [--tracking-uri URI]
    .venv/bin/python scripts/bench_rules.py                        # trains retail_ppo first
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

TARGETS = {"fidelity": 0.95, "profit_retention": 0.98, "rules": 64, "decisions_per_second": 1_000_000}


def _teacher(args: argparse.Namespace, work: Path):
    """The teacher policy and the scenario it was trained on: ``--run`` from the tracking store,
    or a fresh run of ``--experiment`` in a temporary store (as ``invalloc train`` would), both
    restored into ``work`` (removed when the script ends)."""
    from invalloc.agents.learned import load_learned_policy
    from invalloc.export import scenario_of_run
    from invalloc.tracking import configure_tracking

    if args.run:
        uri = configure_tracking(args.tracking_uri)
        run_id = args.run
    else:
        from invalloc.agents.training import train

        uri = f"sqlite:///{work / 'mlflow.db'}"
        run_id = train(args.experiment, tracking_uri=uri, seed=args.seed).run_id
    scenario_folder = work / "scenario"
    scenario_folder.mkdir()
    return load_learned_policy(f"run:{run_id}", uri), scenario_of_run(run_id, uri, scenario_folder)


def decisions_per_second(table, repeats: int = 3) -> float:
    """Best of ``repeats`` timings of deciding 1,000,000 states spread over the table's ranges."""
    from invalloc.rules.command import boundary_grid

    grid = boundary_grid(table)
    low, high = grid.min(axis=0), grid.max(axis=0)
    states = np.random.default_rng(0).uniform(low - 1.0, high + 1.0, (1_000_000, len(table.features)))
    table.decide(states[:1000])
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        table.decide(states)
        best = min(best, time.perf_counter() - start)
    return len(states) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="MLflow run id of a trained policy (else a teacher is trained here).")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--experiment", default="retail_ppo", help="Experiment trained here when --run is not given.")
    parser.add_argument("--seed", type=int, default=0, help="Training seed (with --experiment) and extraction seed.")
    parser.add_argument("--max-rules", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None, help="Keep the exported table here.")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-rules-") as work:
        _measure(args, Path(work))


def _measure(args: argparse.Namespace, work: Path) -> None:
    from invalloc.export.exporter import export_rule_table
    from invalloc.export.extraction import ExtractionSettings
    from invalloc.rules import load_rule_table

    teacher, loaded = _teacher(args, work)
    out = args.out or work / "table"
    start = time.perf_counter()
    manifest = export_rule_table(teacher, loaded, out, ExtractionSettings(max_rules=args.max_rules, seed=args.seed))
    export_seconds = time.perf_counter() - start
    table, _ = load_rule_table(out)
    fidelity = manifest["fidelity"]
    figures = {
        "scenario": loaded.scenario.name,
        "fidelity": min(fidelity["on_table_states"], fidelity["on_teacher_states"]),
        "fidelity_on_table_states": fidelity["on_table_states"],
        "fidelity_on_teacher_states": fidelity["on_teacher_states"],
        "fidelity_tolerance": fidelity["tolerance"],
        "fidelity_strict_on_table_states": fidelity["on_table_states_strict"],
        "fidelity_strict_tolerance": fidelity["strict_tolerance"],
        "profit_retention": manifest["kpi_retention"]["profit_retention"],
        "profit_rules": manifest["kpi_retention"]["rules"]["profit"],
        "profit_teacher": manifest["kpi_retention"]["teacher"]["profit"],
        "best_baseline": manifest["kpi_retention"]["best_baseline"]["name"],
        "profit_best_baseline": manifest["kpi_retention"]["best_baseline"]["profit"],
        "rules": len(table),
        "decisions_per_second": decisions_per_second(table),
        "fidelity_strict_on_teacher_states": fidelity["on_teacher_states_strict"],
        "intervention_rate": manifest["intervention_rate"],
        "decision_variables_changed_rules": manifest["decision_variables_changed"]["rules"],
        "decision_variables_changed_teacher": manifest["decision_variables_changed"]["teacher"],
        "export_seconds": export_seconds,
        "table": str(out),
    }
    met = {
        "fidelity": figures["fidelity"] >= TARGETS["fidelity"],
        "profit_retention": (figures["profit_retention"] or 0.0) >= TARGETS["profit_retention"],
        "rules": figures["rules"] <= TARGETS["rules"],
        "decisions_per_second": figures["decisions_per_second"] >= TARGETS["decisions_per_second"],
    }
    if args.json:
        print(json.dumps({**figures, "targets": TARGETS, "met": met}))
        return
    print(f"rule export on {figures['scenario']} (table in {out}, export took {export_seconds:.0f} s)")
    print(
        f"  fidelity (tolerance {figures['fidelity_tolerance']} action units): "
        f"{figures['fidelity_on_table_states']:.1%} on the table's states, "
        f"{figures['fidelity_on_teacher_states']:.1%} on the teacher's "
        f"(target ≥ {TARGETS['fidelity']:.0%}: {'met' if met['fidelity'] else 'NOT met'}); "
        f"at the strict tolerance {figures['fidelity_strict_tolerance']}: "
        f"{figures['fidelity_strict_on_table_states']:.1%} / {figures['fidelity_strict_on_teacher_states']:.1%}"
    )
    retention = figures["profit_retention"]
    print(
        f"  profit retention: {'n/a' if retention is None else f'{retention:.1%}'} "
        f"(rules {figures['profit_rules']:,.0f} vs teacher {figures['profit_teacher']:,.0f}; best baseline "
        f"{figures['best_baseline']} {figures['profit_best_baseline']:,.0f}) "
        f"(target ≥ {TARGETS['profit_retention']:.0%}: {'met' if met['profit_retention'] else 'NOT met'})"
    )
    print(f"  rules: {figures['rules']} (target ≤ {TARGETS['rules']}: {'met' if met['rules'] else 'NOT met'})")
    print(
        f"  evaluator: {figures['decisions_per_second']:,.0f} decisions/s "
        f"(target ≥ {TARGETS['decisions_per_second']:,}: {'met' if met['decisions_per_second'] else 'NOT met'})"
    )
    print(
        f"  feasibility layer: intervened in {figures['intervention_rate']:.1%} of periods with the table acting; "
        f"changed {figures['decision_variables_changed_rules']:.1%} of decision variables per decision "
        f"(teacher: {figures['decision_variables_changed_teacher']:.1%})"
    )


if __name__ == "__main__":
    main()
