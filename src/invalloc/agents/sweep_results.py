"""A sweep's outcome: one row per trial, and per configuration the final evaluation across seeds.

The *final evaluation* of a trial is its run's last evaluation on the held-out seeds (at the end
of training): ``eval/total_reward``, the mean episode reward over the evaluation episodes. A
configuration's row gives the mean of that number over the seeds whose trials finished, with a
95% Student-t confidence interval across seeds (none from one seed), and the mean profit and
fill rate of the same evaluations. The best configuration has the highest mean.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from invalloc.agents.sweep_space import Overrides, configuration_key, configuration_label
from invalloc.sim.kpis import mean_confidence_interval

#: Run statuses of trials: trained, training raised, stopped or lost with its worker.
FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"
#: Files the parent sweep run holds (artifacts ``sweep/…``).
TRIALS_CSV = "trials.csv"
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"


@dataclass
class TrialOutcome:
    """What became of one trial.

    :param trial_id: Ray Tune's id of the trial.
    :param status: :data:`FINISHED`, :data:`FAILED` (training raised; its run holds the
        traceback) or :data:`KILLED` (stopped by Tune, or lost with its worker or node).
    :param run_id: its MLflow run, None if it was lost before the run was created.
    :param node: the Ray node it ran on ("" if unknown).
    :param final: the final evaluation's ``eval/…`` metrics (empty unless finished).
    :param reason: why it did not finish ("" if it did).
    """

    trial_id: str
    overrides: Overrides
    seed: int
    status: str
    run_id: str | None = None
    node: str = ""
    final: dict[str, float] = field(default_factory=dict)
    best_reward: float | None = None
    model_uri: str | None = None
    reason: str = ""

    @property
    def final_reward(self) -> float | None:
        return self.final.get("eval/total_reward")


@dataclass(frozen=True)
class ConfigurationResult:
    """The final evaluation of one configuration across its seeds (finished trials only)."""

    configuration: str
    overrides: Overrides
    trials: int
    finished: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    profit: float | None
    fill_rate: float | None


def summarise_configurations(outcomes: list[TrialOutcome]) -> list[ConfigurationResult]:
    """One row per configuration, best mean final reward first (configurations with no finished trial last)."""
    groups: dict[str, list[TrialOutcome]] = {}
    for outcome in outcomes:
        groups.setdefault(configuration_key(outcome.overrides), []).append(outcome)
    rows = []
    for members in groups.values():
        done = [m for m in members if m.status == FINISHED and m.final_reward is not None]
        mean = low = high = profit = fill = None
        if done:
            mean, low, high = mean_confidence_interval([m.final_reward for m in done])
            profit = _mean([m.final.get("eval/profit") for m in done])
            fill = _mean([m.final.get("eval/fill_rate") for m in done])
        overrides = members[0].overrides
        rows.append(
            ConfigurationResult(
                configuration_label(overrides), overrides, len(members), len(done), mean, low, high, profit, fill
            )
        )
    return sorted(rows, key=lambda row: (row.mean is None, -(row.mean or 0.0)))


def best_trial(outcomes: list[TrialOutcome], rows: list[ConfigurationResult]) -> TrialOutcome | None:
    """The finished trial with the highest final reward in the best configuration (None if none finished)."""
    if not rows or rows[0].mean is None:
        return None
    key = configuration_key(rows[0].overrides)
    candidates = [
        o
        for o in outcomes
        if o.status == FINISHED and o.final_reward is not None and configuration_key(o.overrides) == key
    ]
    return max(candidates, key=lambda o: (o.final_reward, -o.seed))


def _mean(values: list[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def write_results(outcomes: list[TrialOutcome], rows: list[ConfigurationResult], folder: Path) -> None:
    """``trials.csv``, ``results.csv`` and ``results.json`` (both tables) into ``folder``."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    trials = [
        {
            "trial_id": o.trial_id,
            "configuration": configuration_label(o.overrides),
            "seed": o.seed,
            "status": o.status,
            "run_id": o.run_id or "",
            "node": o.node,
            "final_reward": o.final_reward,
            "best_reward": o.best_reward,
            "reason": o.reason,
        }
        for o in outcomes
    ]
    pd.DataFrame(trials).to_csv(folder / TRIALS_CSV, index=False)
    table = [{k: v for k, v in asdict(row).items() if k != "overrides"} for row in rows]
    pd.DataFrame(table).to_csv(folder / RESULTS_CSV, index=False)
    document: dict[str, Any] = {
        "metric": "final evaluation eval/total_reward: mean and 95% CI across seeds",
        "configurations": [asdict(row) for row in rows],
        "trials": [{**row, "overrides": o.overrides} for row, o in zip(trials, outcomes, strict=True)],
    }
    (folder / RESULTS_JSON).write_text(json.dumps(document, indent=1, default=str))


def results_table(rows: list[ConfigurationResult], title: str):
    """The rich table the command prints: one row per configuration, best first.

    Settings with one value in every configuration go to the title, not to every row.
    """
    from rich.table import Table

    keys = list(dict.fromkeys(key for row in rows for key in row.overrides))
    fixed = {
        key: rows[0].overrides[key]
        for key in keys
        if len(rows) > 1
        and all(key in row.overrides for row in rows)
        and len({configuration_key({key: row.overrides[key]}) for row in rows}) == 1
    }
    if fixed and len(rows) > 0:
        title = f"{title} (all: {configuration_label(fixed)})"
    table = Table(title=title)
    for column, justify in (
        ("configuration", "left"),
        ("seeds", "right"),
        ("final reward ± 95% CI", "right"),
        ("profit", "right"),
        ("fill rate", "right"),
    ):
        table.add_column(column, justify=justify, overflow="fold", no_wrap=column != "configuration")
    for row in rows:
        seeds = f"{row.finished}/{row.trials}"
        varied = {key: value for key, value in row.overrides.items() if key not in fixed}
        label = configuration_label(varied) if varied or not row.overrides else "(as above)"
        if row.mean is None:
            table.add_row(label, seeds, "—", "—", "—")
            continue
        table.add_row(
            label,
            seeds,
            f"{row.mean:,.2f} ± {row.ci_high - row.mean:,.2f}",
            "—" if row.profit is None else f"{row.profit:,.2f}",
            "—" if row.fill_rate is None else f"{row.fill_rate:.3f}",
        )
    return table
