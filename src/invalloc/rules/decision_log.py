"""The decision log: what a rule table saw, decided and achieved, one row per period.

A rule table decides once per period for the whole network: its features are
network-level (cover per DC × SKU group, cash headroom, backlog per tier, …) and the one
rule that matches sets every output. So a decision log has **one row per period** (per
episode when simulated), keyed by ``episode``, ``period`` — the format ``invalloc simulate
--policy rules:DIR --decision-log PATH`` writes and ``invalloc rules monitor`` reads, as
CSV or Parquet:

=========================  ===================================================================
column                     meaning
=========================  ===================================================================
``episode``, ``seed``      the episode (0, 1, …) and its simulator seed (production: any id)
``period``                 the period within the episode (0, 1, …)
``rule_id``                the rule that fired (optional in a production log)
one column per feature     the table's input at the decision point, in its unit (the names of
                           ``manifest.json``'s ``feature_set``; the same columns ``rules decide
                           --input`` reads)
one column per output      the decision taken, in business units (the names of the manifest's
                           ``outputs``); a value other than the table's is a manual override
``kpi.demand_units``       demand of the period (units, all tiers and SKUs)
``kpi.served_units``       of it, served in the period (units)
``kpi.fill_rate``          served / demand (1 when there was no demand)
``kpi.lost_units`` or      demand not served in the period: lost (``unmet_demand: lost_sales``)
``kpi.backordered_units``  or backordered (``backlog``)
``kpi.reward``             the period's reward, undiscounted (currency)
``kpi.profit``             the period's accrual profit (currency)
``kpi.revenue``            the period's revenue (currency)
``kpi.rule_interventions`` decisions the feasibility layer cut in the period
=========================  ===================================================================

Feature and output columns are required by ``rules monitor`` (outputs only for the override
check); the ``kpi.*`` columns are optional (without them there is no KPI drift check).

:func:`monitoring_reference` summarises the same quantities on the states and episodes seen at
export, for the manifest's ``monitoring`` block that ``rules monitor`` compares a log with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING

import numpy as np

from invalloc.rules.table import RuleTable

if TYPE_CHECKING:
    import pandas as pd

    from invalloc.rules.policy import RuleTablePolicy
    from invalloc.sim.network import Network
    from invalloc.sim.simulator import PeriodReport, Simulator

#: Columns that identify a row, before the features.
KEY_COLUMNS = ("episode", "seed", "period", "rule_id")
#: Prefix of the realised KPI columns.
KPI_PREFIX = "kpi."
#: Per-period KPIs in a log, besides the unmet demand column (its name depends on the scenario).
PERIOD_KPIS = ("demand_units", "served_units", "fill_rate", "reward", "profit", "revenue", "rule_interventions")
#: Either name of the unmet demand KPI.
UNMET_KPIS = ("lost_units", "backordered_units")
#: Significant digits of the figures in a manifest's ``monitoring`` block.
REFERENCE_DIGITS = 6


def period_kpis(report: PeriodReport, unmet_demand: str) -> dict[str, float]:
    """The realised KPIs of one period, keyed without the ``kpi.`` prefix (see the module table).

    :param unmet_demand: the scenario's ``episode.unmet_demand`` (``lost_sales`` or ``backlog``).
    """
    demand = float(report.demand.sum())
    served = float(report.served_new.sum())
    unmet = "lost_units" if unmet_demand == "lost_sales" else "backordered_units"
    return {
        "demand_units": demand,
        "served_units": served,
        "fill_rate": served / demand if demand > 0 else 1.0,
        unmet: demand - served,
        "reward": float(report.undiscounted_reward),
        "profit": float(report.profit),
        "revenue": float(report.revenue),
        "rule_interventions": float(report.decision.intervention_count),
    }


class DecisionRecorder:
    """A :class:`~invalloc.rules.policy.RuleTablePolicy` that remembers what it saw and decided.

    It acts exactly as the policy it wraps (same requests). After each episode,
    :meth:`end_episode` pairs the decisions with the period reports into log rows;
    :meth:`frame` returns every row so far as a decision log.
    """

    def __init__(self, policy: RuleTablePolicy) -> None:
        self.policy = policy
        self.table: RuleTable = policy.table
        self.name = policy.name
        self.scenario_digest = policy.scenario_digest
        self._pending: list[tuple[np.ndarray, int]] = []
        self._rows: list[dict] = []

    def reset(self, network: Network, seed: int | None = None) -> None:
        self.policy.reset(network, seed=seed)
        self._pending = []

    def act(self, simulator: Simulator) -> np.ndarray:
        features = np.array(self.policy.features(simulator), dtype=np.float64)
        requests = self.policy.act(simulator)
        rule = self.table.rule_ids.index(self.policy.last_rule_id)
        self._pending.append((features, rule))
        return requests

    def end_episode(self, episode: int, seed: int, reports: Sequence[PeriodReport], unmet_demand: str) -> None:
        """Log rows of the episode just run (its reports in period order)."""
        if len(reports) != len(self._pending):  # one decision per period, always
            raise RuntimeError(f"{len(self._pending)} decisions for {len(reports)} periods")
        table = self.table
        for report, (features, rule) in zip(reports, self._pending, strict=True):
            row: dict = {
                "episode": episode,
                "seed": seed,
                "period": int(report.period),
                "rule_id": table.rule_ids[rule],
            }
            row.update(zip(table.feature_names, (float(v) for v in features), strict=True))
            row.update(zip(table.output_names, (float(v) for v in table.values[rule]), strict=True))
            row.update({KPI_PREFIX + key: value for key, value in period_kpis(report, unmet_demand).items()})
            self._rows.append(row)
        self._pending = []

    def frame(self) -> pd.DataFrame:
        """Every row logged so far (columns in the documented order)."""
        import pandas as pd

        return pd.DataFrame(self._rows)


# ------------------------------------------------------------------ the reference at export
def _round_down(value: float, digits: int = REFERENCE_DIGITS) -> float:
    """``value`` to ``digits`` significant figures, towards −∞ (a range's lower end stays below)."""
    return -_round_up(-value, digits)


def _round_up(value: float, digits: int = REFERENCE_DIGITS) -> float:
    """``value`` to ``digits`` significant figures, towards +∞ (a range's upper end stays above)."""
    if not math.isfinite(value) or float(f"{value:.{digits}g}") == value:
        return float(value)  # already short: 0.95 stays 0.95
    exact = Decimal(value)  # the float's exact binary value
    step = Decimal(1).scaleb(exact.adjusted() - digits + 1)
    # Rounding to the nearest float is monotonic, so a decimal ≥ value reads back ≥ value.
    return float(exact.quantize(step, rounding=ROUND_CEILING))


def _significant(value: float, digits: int = REFERENCE_DIGITS) -> float:
    return float(f"{value:.{digits}g}")


def reference_kpis(rows: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-period KPI means (fill rate: served over demand, over all periods) and standard deviations.

    :param rows: :func:`period_kpis` of every period.
    :returns: ``{kpi: {"mean": …, "std": …}}``.
    """
    keys = [key for key in rows[0] if key != "fill_rate"]
    result = {}
    demand = sum(row["demand_units"] for row in rows)
    served = sum(row["served_units"] for row in rows)
    rates = np.array([row["fill_rate"] for row in rows])
    result["fill_rate"] = {
        "mean": _significant(served / demand if demand > 0 else 1.0),
        "std": _significant(float(rates.std())),
    }
    for key in keys:
        values = np.array([row[key] for row in rows])
        result[key] = {"mean": _significant(float(values.mean())), "std": _significant(float(values.std()))}
    return result


def monitoring_reference(
    table: RuleTable,
    seen: np.ndarray,
    own_states: np.ndarray,
    episodes: Sequence[Sequence[PeriodReport]],
    unmet_demand: str,
) -> dict:
    """The manifest's ``monitoring`` block: what ``rules monitor`` compares a decision log with.

    :param seen: every state (N, F) seen at export (extraction and evaluation); its per-feature
        minimum and maximum are the ``feature_ranges`` (rounded outward to 6 significant figures).
    :param own_states: (M, F) the states the table itself visited on the held-out evaluation
        episodes: each rule's share of them is its expected ``hit_rates``.
    :param episodes: the period reports of those episodes: per-period KPI means and standard
        deviations (``kpis``, as :func:`period_kpis` names them).
    """
    low, high = seen.min(axis=0), seen.max(axis=0)
    rules = table.decide(own_states)
    counts = np.bincount(rules, minlength=len(table))
    rows = [period_kpis(report, unmet_demand) for reports in episodes for report in reports]
    return {
        "feature_ranges": {
            name: [_round_down(float(lo)), _round_up(float(hi))]
            for name, lo, hi in zip(table.feature_names, low, high, strict=True)
        },
        "states_seen": int(len(seen)),
        "hit_rates": {
            rid: round(float(c) / len(rules), REFERENCE_DIGITS) for rid, c in zip(table.rule_ids, counts, strict=True)
        },
        "periods": int(len(rules)),
        "episodes": len(episodes),
        "kpis": reference_kpis(rows),
    }


__all__ = [
    "DecisionRecorder",
    "KEY_COLUMNS",
    "KPI_PREFIX",
    "PERIOD_KPIS",
    "UNMET_KPIS",
    "monitoring_reference",
    "period_kpis",
    "reference_kpis",
]
