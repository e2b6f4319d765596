"""Without an audit log a period's business steps run in one compiled call
(:func:`invalloc.sim.kernels.run_period`); it must give what the five actors' turns give, bit
for bit: every report, the decision, the books and the state left for the next period."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from invalloc.baselines import make_policy
from invalloc.config.generate import generate_scenario
from invalloc.config.loader import load_scenario, parse_scenario
from invalloc.sim import simulator as simulator_module
from invalloc.sim.network import compile_network
from invalloc.sim.simulator import Simulator

GENERATED = {
    "delay_backorder": {"approval_action": "delay", "backorder_replenishment": True, "shortfall_penalty": True},
    "weighted_average_lost_sales": {"cost_method": "weighted_average", "unmet_demand": "lost_sales"},
    "mixed_units_uniform_leads": {"integer_units": "mixed", "lead_time_kind": "uniform", "approval_action": "cap"},
}


def _network(name: str):
    if name in GENERATED:
        data = generate_scenario(12, 3, 3, seed=5, horizon=20, **GENERATED[name])
        return compile_network(parse_scenario(data, name, Path.cwd()))
    return compile_network(load_scenario(name))


def _episode(network, one_call: bool, seed: int = 3) -> tuple[list, Simulator]:
    simulator = Simulator(network, check_invariants=True)
    if not one_call:
        simulator._one_call_periods = lambda: False  # the five actors take their turns
    policy = make_policy("base_stock", None)
    simulator.reset(seed=seed)
    policy.reset(network, seed=seed)
    reports = []
    while not simulator.done:
        reports.append(simulator.step(policy.act(simulator)))
    return reports, simulator


def _fingerprint(report) -> list:
    decision = report.decision
    arrays = [report.demand, report.served_new, report.served, report.short, report.on_hand]
    arrays += [decision.orders, decision.delayed_orders, decision.transfers, decision.allocations]
    arrays += [decision.requested, decision.executed, decision.log, decision.shortfall]
    scalars = [report.reward, report.undiscounted_reward, report.profit, report.revenue, report.cash]
    scalars += [report.inventory_value, report.written_down, report.expired_units, decision.purchase_value]
    scalars += [decision.shortfall_penalty, *report.costs.values()]
    return [np.asarray(array).tobytes() for array in arrays] + [float(x).hex() for x in scalars]


@pytest.mark.parametrize("name", ["retail", "tiny", "orgym_invmanagement_v1", "newsvendor", "base_stock", *GENERATED])
def test_one_compiled_call_a_period_gives_what_the_actors_give(name):
    network = _network(name)
    fast, fast_sim = _episode(network, one_call=True)
    slow, slow_sim = _episode(network, one_call=False)
    assert fast_sim._one_call_periods() and not slow_sim._one_call_periods()
    assert [_fingerprint(r) for r in fast] == [_fingerprint(r) for r in slow]
    assert fast_sim.ledger.balance.tobytes() == slow_sim.ledger.balance.tobytes()
    assert fast_sim.payables == slow_sim.payables and fast_sim.receivables == slow_sim.receivables
    assert fast_sim._pending_value == slow_sim._pending_value
    assert fast_sim.layers.quantity.tobytes() == slow_sim.layers.quantity.tobytes()


def test_the_one_call_period_grows_the_cost_layers_as_the_actors_do(monkeypatch):
    # One layer slot to start with: receipts keep finding the layers full mid-period.
    monkeypatch.setattr(simulator_module, "LAYER_SLOTS", 1)
    network = _network("retail")
    fast, fast_sim = _episode(network, one_call=True)
    slow, slow_sim = _episode(network, one_call=False)
    assert fast_sim.layers.quantity.shape[2] > 1  # the layers grew
    assert fast_sim.layers.quantity.shape == slow_sim.layers.quantity.shape
    assert [_fingerprint(r) for r in fast] == [_fingerprint(r) for r in slow]
    assert fast_sim.ledger.balance.tobytes() == slow_sim.ledger.balance.tobytes()


def test_an_audited_simulator_and_a_subclass_replacing_an_actor_take_the_actors_turns():
    network = _network("tiny")
    audited = Simulator(network, audit=True)
    assert not audited._one_call_periods()

    class Recording(Simulator):
        def _finance(self):
            yield from super()._finance()

    assert not Recording(network)._one_call_periods()
    assert Simulator(network)._one_call_periods()
