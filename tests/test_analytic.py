"""Base-stock cost against the analytic optima of docs/validation.md §1 (Snyder & Shen).

The mean cost per period is estimated from long runs (several seeds × many periods); its
standard error comes from batch means, which absorb the autocorrelation that a lead time
creates. Each test first shows that its run is long enough for 1% to be ≥ 3 standard errors.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import network_of
from invalloc.baselines import make_policy
from invalloc.sim.simulator import Simulator, run_episode

CASES = [
    # scenario, base-stock level, reference cost per period, periods per seed
    ("newsvendor", 56.603956, 1.997605, 40_000),
    ("base_stock", 264.766894, 4.466781, 75_000),
    ("base_stock", 274.766894, 5.0552, 75_000),
]
SEEDS = (11, 12, 13, 14)
BATCH = 1_000  # periods per batch: ≫ the lead-time correlation of L + 1 = 5 periods


def cost_batches(scenario: str, level: float, periods: int) -> np.ndarray:
    network = network_of(scenario)
    warmup = network.scenario.episode.warmup
    simulator = Simulator(network, check_invariants=False, periods=periods + warmup)
    batches = []
    for seed in SEEDS:
        reports = run_episode(simulator, make_policy("base_stock", {"level": str(level)}), seed=seed)
        cost = np.array([r.revenue - r.undiscounted_reward for r in reports[warmup:]])
        batches.append(cost[: len(cost) // BATCH * BATCH].reshape(-1, BATCH).mean(axis=1))
    return np.concatenate(batches)


@pytest.mark.parametrize("scenario,level,reference,periods", CASES)
def test_base_stock_cost_matches_analytic_value(scenario, level, reference, periods):
    batches = cost_batches(scenario, level, periods)
    mean = batches.mean()
    standard_error = batches.std(ddof=1) / np.sqrt(len(batches))
    assert 0.01 * reference >= 3 * standard_error, f"run too short: SE {standard_error:.4f}"
    assert mean == pytest.approx(reference, rel=0.01)


def test_a_wrong_level_costs_more():
    optimal = cost_batches("base_stock", 264.766894, 20_000).mean()
    for wrong in (244.766894, 284.766894):
        assert cost_batches("base_stock", wrong, 20_000).mean() > optimal + 0.1
