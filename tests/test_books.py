"""Accounting: cost layers (FIFO, weighted average), lower of cost and NRV, expiry, invariants."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import network_of
from invalloc.baselines import make_policy
from invalloc.config.loader import parse_scenario
from invalloc.sim.books import Account, CostLayers, Ledger
from invalloc.sim.network import compile_network
from invalloc.sim.simulator import InvariantError, Simulator, run_episode


def one_dc_layers(weighted_average: bool) -> CostLayers:
    layers = CostLayers(1, 1, weighted_average, slots=2)
    never = np.full((1, 1), 10**9)
    layers.receive(np.array([[10.0]]), np.array([[1.0]]), never)
    layers.receive(np.array([[10.0]]), np.array([[3.0]]), never)
    layers.receive(np.array([[10.0]]), np.array([[5.0]]), never)  # more layers than slots: grows
    return layers


def test_fifo_issues_oldest_cost_first():
    layers = one_dc_layers(weighted_average=False)
    cost, _ = layers.issue(np.array([[15.0]]))
    assert cost[0, 0] == pytest.approx(10 * 1.0 + 5 * 3.0)
    assert layers.value() == pytest.approx(5 * 3.0 + 10 * 5.0)
    assert layers.on_hand()[0, 0] == pytest.approx(15.0)


def test_weighted_average_issues_at_moving_average():
    layers = one_dc_layers(weighted_average=True)
    cost, _ = layers.issue(np.array([[15.0]]))
    assert cost[0, 0] == pytest.approx(15 * 3.0)
    assert layers.value() == pytest.approx(15 * 3.0)


def test_lower_of_cost_and_nrv_writes_down_only_above_nrv():
    layers = one_dc_layers(weighted_average=False)
    written = layers.write_down_to(np.array([2.0]))
    assert written == pytest.approx(10 * (3.0 - 2.0) + 10 * (5.0 - 2.0))
    assert layers.value() == pytest.approx(10 * 1.0 + 20 * 2.0)
    assert layers.write_down_to(np.array([2.0])) == 0.0


def test_expiry_removes_only_expired_layers():
    layers = CostLayers(1, 1, False)
    layers.receive(np.array([[4.0]]), np.array([[2.0]]), np.array([[3]]))
    layers.receive(np.array([[6.0]]), np.array([[2.5]]), np.array([[7]]))
    units, cost = layers.expire(3)
    assert units[0, 0] == 4.0 and cost == pytest.approx(8.0)
    assert layers.on_hand()[0, 0] == 6.0


def test_ledger_postings_balance():
    ledger = Ledger()
    ledger.post(Account.INVENTORY, Account.PAYABLES, 100.0)
    ledger.post(Account.COST_OF_GOODS_SOLD, Account.INVENTORY, 40.0)
    ledger.post(Account.RECEIVABLES, Account.REVENUE, 70.0)
    assert ledger.trial_balance() == 0.0
    assert ledger.period_profit() == pytest.approx(30.0)


def perishable_scenario(cost_method: str) -> dict:
    return {
        "name": "perishable",
        "products": [
            {
                "id": "milk",
                "unit_cost": 2.0,
                "price": 5.0,
                "holding_cost": 0.1,
                "shelf_life": 2,
                "net_realisable_value": 1.5,
            }
        ],
        "suppliers": [{"id": "dairy", "items": {"milk": {"unit_cost": 2.0}}, "payment_terms_days": 14}],
        "locations": [{"id": "dc", "opening_stock": 30}],
        "channels": [
            {
                "id": "shop",
                "payment_terms_days": 7,
                "tiers": [{"id": "all", "priority": 0, "demand_share": 1.0, "penalty_per_unit_short": 1.0}],
            }
        ],
        "lanes": [{"from": "dairy", "to": "dc", "lead_time": 1, "cost_per_unit": 0.2}, {"from": "dc", "to": "shop"}],
        "demand": {"streams": [{"channel": "shop", "distribution": "poisson", "mean": 8}]},
        "finance": {"opening_cash": 500.0, "cost_method": cost_method, "supplier_payment_terms_days": 14},
        "rules": {"cash_rule": False},
        "episode": {"horizon": 25, "period_days": 7, "reward_basis": "accounting"},
    }


@pytest.mark.parametrize("cost_method", ["fifo", "weighted_average"])
def test_perishables_expire_and_books_reconcile(cost_method, tmp_path):
    network = compile_network(parse_scenario(perishable_scenario(cost_method), "perishable", tmp_path))
    simulator = Simulator(network, check_invariants=True)
    reports = run_episode(simulator, make_policy("fixed", {"quantity": "25"}), seed=4)
    assert all(r.invariants_ok for r in reports)
    assert sum(r.expired_units for r in reports) > 0  # more arrives than sells: some spoils
    assert sum(r.written_down for r in reports) > 0  # NRV 1.5 < landed cost 2.2
    # Accounting reward basis: the rewards are the periods' accrual profits.
    assert [r.undiscounted_reward for r in reports] == pytest.approx([r.profit for r in reports])
    # Profit over the episode = change in equity: the ledger closes.
    equity_change = sum(r.profit for r in reports)
    ledger = simulator.ledger
    net_assets = sum(
        ledger.balance[a]
        for a in (Account.CASH, Account.RECEIVABLES, Account.INVENTORY, Account.INVENTORY_IN_TRANSIT, Account.PAYABLES)
    )
    assert net_assets == pytest.approx(500.0 + 30 * 2.0 + equity_change)


def test_a_broken_book_is_caught():
    network = network_of("tiny")
    simulator = Simulator(network, check_invariants=True)
    policy = make_policy("base_stock")
    simulator.reset(seed=1)
    policy.reset(network, seed=1)
    simulator.step(policy.act(simulator))
    simulator.ledger.balance[Account.CASH] += 5.0  # an unbalanced posting
    with pytest.raises(InvariantError, match="trial balance"):
        simulator.step(policy.act(simulator))
    simulator.reset(seed=1)
    simulator.on_hand[0, 0] += 1.0  # a unit appears from nowhere
    with pytest.raises(InvariantError, match="cost-layer|conserved"):
        simulator.step(policy.act(simulator))


def test_same_seed_same_episode_and_common_random_numbers():
    network = network_of("retail")
    simulator = Simulator(network, check_invariants=True)
    first = run_episode(simulator, make_policy("base_stock"), seed=7)
    demand_first = simulator.tier_demand.copy()
    again = run_episode(simulator, make_policy("base_stock"), seed=7)
    assert [r.reward for r in first] == [r.reward for r in again]
    assert all(np.array_equal(a.on_hand, b.on_hand) for a, b in zip(first, again, strict=True))
    run_episode(simulator, make_policy("priority", {"cover": "3"}), seed=7)
    assert np.array_equal(simulator.tier_demand, demand_first)  # demand does not depend on the policy
    run_episode(simulator, make_policy("base_stock"), seed=8)
    assert not np.array_equal(simulator.tier_demand, demand_first)


def test_retail_cash_buffer_binds_and_is_never_broken():
    network = network_of("retail")
    simulator = Simulator(network, check_invariants=True)
    # The naive (uncapped) rule, so the layer's cash rule has something to cut.
    reports = run_episode(simulator, make_policy("base_stock", {"cover": "3", "capped": "false"}), seed=0)
    assert any("cash_rule" in r.decision.interventions for r in reports)
    assert all(r.invariants_ok for r in reports)
