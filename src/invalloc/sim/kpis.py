"""Episode KPIs from period reports, and summaries over episodes (mean and 95% CI)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from invalloc.sim.network import Network
from invalloc.sim.simulator import PeriodReport


def episode_kpis(reports: Sequence[PeriodReport], network: Network) -> dict:
    """KPIs of one episode; periods inside the scenario's warm-up are left out (not of the reward).

    Money in the scenario currency, quantities in units. ``total_reward`` is the discounted
    return over every period, ``per_period_reward`` lists each period's discounted reward.
    """
    episode = network.scenario.episode
    kept = [r for r in reports if r.period >= episode.warmup] or list(reports)
    periods = len(kept)
    demand = sum(r.demand for r in kept)  # (T, S)
    served_new = sum(r.served_new for r in kept)
    tier_demand = demand.sum(axis=1)
    tier_served = served_new.sum(axis=1)
    fill_by_tier = {
        tier: (float(tier_served[t] / tier_demand[t]) if tier_demand[t] > 0 else 1.0)
        for t, tier in enumerate(network.tiers)
    }
    breaches = 0
    for r in kept:
        wanted = r.demand.sum(axis=1)
        got = r.served_new.sum(axis=1)
        rate = np.divide(got, wanted, out=np.ones_like(got), where=wanted > 0)
        breaches += int(((rate < network.tier_min_fill_rate - 1e-9) & (wanted > 0)).sum())
    revenue = sum(r.revenue for r in kept)
    cogs = sum(r.costs["cost_of_goods_sold"] for r in kept)
    inventory_value = float(np.mean([r.inventory_value for r in kept]))
    years = periods * episode.period_days / 365.0
    interventions = sum(r.decision.intervention_count for r in kept)
    intervention_volume = sum(r.decision.intervention_volume for r in kept)
    unfilled = float(tier_demand.sum() - tier_served.sum())
    return {
        "total_reward": float(sum(r.reward for r in reports)),
        "per_period_reward": [float(r.reward) for r in reports],
        "profit": float(sum(r.profit for r in kept)),
        "revenue": float(revenue),
        "cost_per_period": float(np.mean([r.revenue - r.undiscounted_reward for r in kept])),
        "fill_rate": float(tier_served.sum() / tier_demand.sum()) if tier_demand.sum() > 0 else 1.0,
        "fill_rate_by_tier": fill_by_tier,
        "contract_breaches": breaches,
        ("lost_units" if episode.unmet_demand == "lost_sales" else "backordered_units"): unfilled,
        "average_inventory_value": inventory_value,
        "inventory_turns": float(cogs / inventory_value / years) if inventory_value > 0 and years > 0 else 0.0,
        "minimum_cash": float(min(r.cash for r in reports)),
        "write_downs": float(sum(r.written_down for r in kept)),
        "expired_units": float(sum(r.expired_units for r in kept)),
        "rule_interventions": int(interventions),
        "intervention_volume": float(intervention_volume),
        "periods": len(reports),
        "invariants_ok": all(r.invariants_ok for r in reports),
    }


def _flatten(kpis: dict) -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in kpis.items():
        if key in ("episode", "seed", "periods"):
            continue
        if isinstance(value, dict):
            for inner, number in value.items():
                flat[f"{key}/{inner}"] = float(number)
        elif isinstance(value, bool) or isinstance(value, list):
            continue
        elif isinstance(value, int | float):
            flat[key] = float(value)
    return flat


def mean_confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two ends of its ``level`` Student-t confidence interval."""
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if len(data) < 2 or float(data.std(ddof=1)) == 0.0:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, len(data) - 1) * data.std(ddof=1) / math.sqrt(len(data)))
    return mean, mean - half, mean + half


def summarise(episodes: Sequence[dict]) -> dict[str, dict[str, float]]:
    """Mean and 95% CI of every numeric KPI over episodes: ``{kpi: {mean, ci_low, ci_high}}``."""
    flats = [_flatten(e) for e in episodes]
    summary = {}
    for key in flats[0]:
        mean, low, high = mean_confidence_interval([f[key] for f in flats])
        summary[key] = {"mean": mean, "ci_low": low, "ci_high": high}
    return summary
