"""The rule table's features (:class:`invalloc.env.features.FeatureSet`): the compiled pass
against the definitions written out in numpy, value for value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from invalloc.baselines import make_policy
from invalloc.config.generate import generate_scenario
from invalloc.config.loader import load_scenario, parse_scenario
from invalloc.env.features import NO_DEMAND_COVER_DAYS, FeatureSet, sku_groups
from invalloc.sim.network import compile_network
from invalloc.sim.planning import PlanningView
from invalloc.sim.simulator import Simulator


def reference(features: FeatureSet, simulator: Simulator) -> np.ndarray:
    """The features as :mod:`invalloc.env.feature_definitions` defines them, in numpy: a group's
    stock and demand summed SKU by SKU in SKU order (``cumsum``), every other sum by ``sum``."""
    n = simulator.network
    view = PlanningView(n)
    per_day = 1.0 / features.period_days
    position = simulator.on_hand + simulator.inbound - view.backlog_to_location @ simulator.backlog
    demand = view.demand_through(simulator)
    groups = list(sku_groups(n).values())

    def by_group(values: np.ndarray) -> np.ndarray:  # (D, S) → (D, G), each group in SKU order
        return np.stack([np.cumsum(values[:, skus], axis=1)[:, -1] for skus in groups], axis=1)

    group_position = by_group(position)
    group_demand = by_group(demand) * per_day
    cover = np.divide(
        group_position, group_demand, out=np.full_like(group_position, NO_DEMAND_COVER_DAYS), where=group_demand > 1e-12
    )
    cover = np.minimum(cover, NO_DEMAND_COVER_DAYS)
    if simulator.cash_rule_active:
        headroom = simulator.purchase_headroom()
    else:
        headroom = simulator.cash + n.scenario.finance.credit_line
    if n.scenario.episode.unmet_demand == "lost_sales":
        report = simulator.last_report
        owed = report.short.sum(axis=1) if report is not None else np.zeros(len(n.tiers))
    else:
        owed = simulator.backlog.sum(axis=1)
    tier_demand = simulator.demand_forecast().sum(axis=1) * per_day
    backlog_days = np.divide(owed, tier_demand, out=np.zeros_like(owed), where=tier_demand > 1e-12)
    expected = simulator.demand_model.expected[: simulator.periods]
    average = float(expected.sum(axis=(1, 2)).mean())
    now = float(simulator.demand_forecast().sum())
    season = now / average if average > 0 else 1.0
    remaining = (simulator.periods - simulator.period) * features.period_days
    head = np.concatenate((cover.ravel(), [headroom], backlog_days, [season, remaining]))
    if not features.pipeline_periods:
        return head
    dc_demand = demand.sum(axis=1) * per_day
    arriving = simulator.pipeline(features.pipeline_periods).sum(axis=2).T  # (D, K)
    inbound = np.divide(
        arriving,
        dc_demand[:, None],
        out=np.where(arriving > 0, NO_DEMAND_COVER_DAYS, 0.0),
        where=dc_demand[:, None] > 1e-12,
    )
    return np.concatenate((head, np.minimum(inbound, NO_DEMAND_COVER_DAYS).ravel()))


def _generated(n_skus: int, **options) -> object:
    data = generate_scenario(n_skus, 3, 3, seed=1, **options)
    return compile_network(parse_scenario(data, "generated", Path.cwd()))


NETWORKS = {
    "retail": lambda: compile_network(load_scenario("retail")),  # lost sales, cash rule, perishables
    "tiny": lambda: compile_network(load_scenario("tiny")),  # backlog
    "newsvendor": lambda: compile_network(load_scenario("newsvendor")),
    "orgym_invmanagement_v0": lambda: compile_network(load_scenario("orgym_invmanagement_v0")),
    # Groups of more than 32 SKUs (where a BLAS matrix product would sum in another order),
    # fractional units, backlog and lost sales.
    "generated_200_backlog": lambda: _generated(200, unmet_demand="backlog", integer_units=False),
    "generated_120_lost_sales": lambda: _generated(120, unmet_demand="lost_sales", integer_units="mixed"),
}


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_compiled_features_equal_their_definitions_value_for_value(name, version):
    network = NETWORKS[name]()
    features = FeatureSet(network, version)
    simulator = Simulator(network, check_invariants=False)
    rng = np.random.default_rng(7)
    checked = 0
    for episode, policy in enumerate(("base_stock", "proportional")):
        rule = make_policy(policy)
        simulator.reset(seed=episode)
        rule.reset(network, seed=episode)
        while True:
            values = features.compute(simulator)
            expected = reference(features, simulator)
            assert values.shape == (features.size,) and values.dtype == np.float64
            # Bit for bit, NaN included (array_equal would call NaN unequal to itself).
            assert values.tobytes() == expected.tobytes(), (name, simulator.period, values - expected)
            checked += 1
            if simulator.done:
                break
            # The rule's requests, randomly scaled: stock, backlog and pipelines of every size.
            simulator.step(rule.act(simulator) * rng.uniform(0.0, 2.0))
    assert checked > 2 * simulator.periods


def test_features_of_few_skus_equal_the_matrix_product_they_were_defined_by():
    """With groups of fewer than 32 SKUs (every shipped scenario) a group's sum in SKU order is
    the matrix product the features were first computed with, bit for bit: tables extracted
    before the compiled pass read the same values."""
    network = compile_network(load_scenario("retail"))
    features = FeatureSet(network)
    assert max(len(skus) for skus in sku_groups(network).values()) < 32
    masks = np.zeros((len(sku_groups(network)), network.n_skus))
    for g, skus in enumerate(sku_groups(network).values()):
        masks[g, skus] = 1.0
    simulator = Simulator(network, check_invariants=False)
    simulator.reset(seed=3)
    rule = make_policy("base_stock")
    rule.reset(network, seed=3)
    view = PlanningView(network)
    n_cover = len(network.locations) * masks.shape[0]
    for _ in range(12):
        simulator.step(rule.act(simulator))
        demand = view.demand_through(simulator) @ masks.T * (1.0 / features.period_days)
        position = view.positions(simulator) @ masks.T
        cover = np.minimum(
            np.divide(position, demand, out=np.full_like(position, NO_DEMAND_COVER_DAYS), where=demand > 1e-12),
            NO_DEMAND_COVER_DAYS,
        )
        assert features.compute(simulator)[:n_cover].tobytes() == cover.ravel().tobytes()
