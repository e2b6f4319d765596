"""How faithful an extracted rule table is: fidelity and KPI retention on held-out seeds.

All policies run the same held-out seeds (common random numbers: the same demand for
each), so differences in profit and fill rate come from the decisions alone.

- **Fidelity** — agreement of the table's action with the teacher's, per output within
  the extraction's tolerance, on the states the *table* visits and on the states the
  *teacher* visits.
- **KPI retention** — profit and per-tier fill rate of the table, the teacher and the best
  rule-based baseline (by mean profit), and the table's profit as a share of the teacher's.
  For an ``anchored`` teacher, also the rule it corrects alone (``anchor``): the table and
  the teacher should both beat it.
- **Intervention rate** — how often the feasibility layer had to change the table's
  requests: the share of periods with at least one intervention (on `retail` some rule —
  the cash rule, purchase approval, a channel's share — binds nearly every period, so this
  is close to 100% for any policy) and, the informative figure, the share of decision
  variables it changed per decision (executed ≠ requested after whole-unit rounding), for
  the table and for the teacher on the same seeds.
"""

from __future__ import annotations

import numpy as np

from invalloc.export.extraction import STRICT_TOLERANCE, ExtractionSettings, Rollouts, Teacher, agreement
from invalloc.rules.decision_log import monitoring_reference
from invalloc.rules.policy import RuleTablePolicy
from invalloc.rules.table import RuleTable, anchor_label
from invalloc.sim.kpis import episode_kpis
from invalloc.sim.simulator import PeriodReport, Simulator, run_episodes

#: Rule-based baselines the table is compared with: with the parameters tuned for the scenario
#: where invalloc or the project ships them (``NAME@tuned``), else with their defaults.
BASELINES = ("base_stock", "proportional", "priority")


def _baselines(scenario: str) -> dict[str, object]:
    """``{label: policy}``: each of :data:`BASELINES`, tuned for ``scenario`` where tuned parameters exist."""
    from invalloc.baselines import make_policy
    from invalloc.baselines.tuning import TUNED, load_params
    from invalloc.config.shipped import tuned_file

    policies = {}
    for name in BASELINES:
        if tuned_file(scenario, name) is None:
            policies[name] = make_policy(name)
        else:
            _, params = load_params(TUNED, policy=name, scenario=scenario)
            policies[f"{name}@{TUNED}"] = make_policy(name, params)
    return policies


def _kpi_summary(episodes: list[list[PeriodReport]], simulator: Simulator) -> dict:
    """Mean profit and per-tier fill rate over episodes, and the feasibility interventions."""
    kpis = [episode_kpis(reports, simulator.network) for reports in episodes]
    tiers = simulator.network.tiers
    periods = [r for reports in episodes for r in reports]
    return {
        "profit": float(np.mean([k["profit"] for k in kpis])),
        "fill_rate": float(np.mean([k["fill_rate"] for k in kpis])),
        "fill_rate_by_tier": {t: float(np.mean([k["fill_rate_by_tier"][t] for k in kpis])) for t in tiers},
        "intervention_rate": float(np.mean([r.decision.intervention_count > 0 for r in periods])),
        "interventions_per_period": float(np.mean([r.decision.intervention_count for r in periods])),
        "decision_variables_changed": float(np.mean([_changed_share(r) for r in periods])),
        "episodes": len(episodes),
    }


def _changed_share(report: PeriodReport) -> float:
    """Share of the period's decision variables the feasibility layer changed: executed differs
    from the sanitised request (which is already rounded down to whole units)."""
    decision = report.decision
    if len(decision.requested) == 0:
        return 0.0
    return float(np.count_nonzero(np.abs(decision.requested - decision.executed) > 1e-9) / len(decision.requested))


def evaluate(
    simulator: Simulator,
    teacher: Teacher,
    table: RuleTable,
    settings: ExtractionSettings,
    seen: np.ndarray | None = None,
) -> dict:
    """Fidelity, KPI retention and intervention rate of ``table`` against ``teacher``.

    :param seen: states (N, F) seen in extraction; with the evaluation's own states they make the
        feature ranges of the ``monitoring`` reference.
    :returns: ``{"fidelity": {...}, "kpi_retention": {...}, "intervention_rate": float,
        "decision_variables_changed": {"rules": float, "teacher": float},
        "evaluation_seeds": [first, last], "monitoring": {...}}``; money in the scenario currency,
        rates as shares; ``monitoring`` is what ``rules monitor`` compares a decision log with
        (:func:`~invalloc.rules.decision_log.monitoring_reference`: feature ranges seen, each rule's
        hit rate and the per-period KPIs of the table on the held-out episodes).
    """
    seeds = list(range(settings.evaluation_seed, settings.evaluation_seed + settings.evaluation_episodes))
    simulator.demands.keep(seeds)  # every policy below runs on them: their demand is drawn once
    rollouts = Rollouts(simulator, teacher)
    student = RuleTablePolicy(table, simulator.network.loaded.digest, name="rules")
    on_teacher = rollouts.run(seeds, student=None)
    on_table = rollouts.run(seeds, student=student)
    tolerance = settings.fidelity_tolerance
    fidelity_table = agreement(table, on_table, tolerance)
    fidelity_teacher = agreement(table, on_teacher, tolerance)
    summaries = {
        "rules": _kpi_summary(on_table.episodes, simulator),
        "teacher": _kpi_summary(on_teacher.episodes, simulator),
    }
    baselines = {}
    for name, policy in _baselines(simulator.network.scenario.name).items():
        baselines[name] = _kpi_summary(list(run_episodes(simulator, policy, seeds)), simulator)
    best = max(baselines, key=lambda name: baselines[name]["profit"])
    teacher_profit = summaries["teacher"]["profit"]
    retention = summaries["rules"]["profit"] / teacher_profit if teacher_profit > 0 else None
    anchor = None
    if teacher.action_mode == "anchored":
        from invalloc.agents.anchor import build_anchor

        rule = build_anchor(teacher.anchor or {})
        anchor = {
            "name": anchor_label(teacher.anchor),
            **_kpi_summary(list(run_episodes(simulator, rule, seeds)), simulator),
        }
    states = [on_table.features, on_teacher.features] + ([seen] if seen is not None else [])
    monitoring = monitoring_reference(
        table,
        np.concatenate(states),
        on_table.features,
        on_table.episodes,
        simulator.network.scenario.episode.unmet_demand,
    )
    return {
        "fidelity": {
            "tolerance": tolerance,
            "on_table_states": fidelity_table["agreement"],
            "on_teacher_states": fidelity_teacher["agreement"],
            "strict_tolerance": STRICT_TOLERANCE,
            "on_table_states_strict": fidelity_table["agreement_strict"],
            "on_teacher_states_strict": fidelity_teacher["agreement_strict"],
            "all_outputs_agree_on_table_states": fidelity_table["all_outputs_agree"],
            "all_outputs_agree_on_teacher_states": fidelity_teacher["all_outputs_agree"],
            "mean_abs_error_on_table_states": fidelity_table["mean_abs_error"],
            "mean_abs_error_on_teacher_states": fidelity_teacher["mean_abs_error"],
        },
        "kpi_retention": {
            "profit_retention": retention,
            "rules": summaries["rules"],
            "teacher": summaries["teacher"],
            "best_baseline": {"name": best, **baselines[best]},
            "baselines_profit": {name: b["profit"] for name, b in baselines.items()},
            **({"anchor": anchor} if anchor is not None else {}),
        },
        "intervention_rate": summaries["rules"]["intervention_rate"],
        "decision_variables_changed": {
            "rules": summaries["rules"]["decision_variables_changed"],
            "teacher": summaries["teacher"]["decision_variables_changed"],
        },
        "evaluation_seeds": [seeds[0], seeds[-1]],
        "monitoring": monitoring,
    }
