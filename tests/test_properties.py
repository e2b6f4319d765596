"""Property tests: random scenarios × hostile requests never break the books or the rules.

Scenarios come from :func:`invalloc.config.generate.generate_scenario` (hypothesis draws the
sizes, the seed and the feature switches); requests per period are either hostile vectors
(negative, NaN, ±inf, 1e12, fractions) or a base-stock policy's requests, plain or distorted.
Every executed decision is checked here, independently of the feasibility layer, against
the state the simulator showed before the step and against the audit log of the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from invalloc.baselines import make_policy
from invalloc.config.generate import generate_scenario
from invalloc.config.loader import parse_scenario
from invalloc.sim.network import Network, compile_network
from invalloc.sim.simulator import PeriodReport, Simulator, run_episode

UNITS = 1e-6  # unit tolerance
REL = 1e-9  # relative tolerance on money and large quantities

SPECIAL = [0.0, -0.0, -1.0, -1e12, 1e12, math.nan, math.inf, -math.inf, 0.5, 2.7, 1e-9, 3.0]
ELEMENT = st.one_of(
    st.sampled_from(SPECIAL),
    st.floats(min_value=-50, max_value=500, allow_nan=False, allow_infinity=False),
    st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
)
SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


def build(data: dict[str, Any]) -> Network:
    return compile_network(parse_scenario(data, "generated", Path.cwd()))


@st.composite
def scenario_data(draw: st.DrawFn) -> dict[str, Any]:
    """A generated scenario with hypothesis-chosen size, seed and features; horizon 6–10."""
    options = {
        "cost_method": draw(st.sampled_from(["fifo", "weighted_average"])),
        "unmet_demand": draw(st.sampled_from(["backlog", "lost_sales"])),
        "reward_basis": draw(st.sampled_from(["economic", "accounting"])),
        "approval_action": draw(st.sampled_from(["cap", "delay", "none"])),
        "integer_units": draw(st.sampled_from([True, False, "mixed"])),
        "lead_time_kind": draw(st.sampled_from(["fixed", "uniform", "discrete"])),
    }
    for switch in (
        "shelf_life",
        "net_realisable_value",
        "location_capacity",
        "cash_rule",
        "purchase_budget",
        "max_channel_share",
        "reserve_stock",
        "backorder_replenishment",
        "shortfall_penalty",
        "supplier_capacity",
        "moq",
        "reliability",
        "serve_contract_minimums_first",
        "sales_lane_capacity",
    ):
        options[switch] = draw(st.booleans())
    data = generate_scenario(
        draw(st.integers(1, 6)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 3)),
        draw(st.integers(0, 2**32 - 1)),
        tiers_per_channel=draw(st.integers(1, 3)),
        **options,
    )
    data["episode"]["horizon"] = draw(st.integers(6, 10))
    return data


def draw_requests(run: st.DataObject, sim: Simulator, policy) -> np.ndarray:
    """Hostile random requests, or a base-stock policy's requests (plain, scaled or negated)."""
    n = sim.network.n_decisions
    mode = run.draw(st.sampled_from(["hostile", "policy", "policy_scaled", "policy_mixed"]), label="mode")
    if mode == "hostile":
        return np.array(run.draw(st.lists(ELEMENT, min_size=n, max_size=n), label="requests"), dtype=float)
    requests = policy.act(sim)
    if mode == "policy_scaled":
        requests = requests * run.draw(st.sampled_from([-1.0, 0.3, 1.7, 10.0, 1e6]), label="scale")
    elif mode == "policy_mixed":
        mask = np.array(run.draw(st.lists(st.booleans(), min_size=n, max_size=n), label="mask"))
        noise = np.array(run.draw(st.lists(ELEMENT, min_size=n, max_size=n), label="noise"), dtype=float)
        requests = np.where(mask, noise, requests)
    return requests


# ---------------------------------------------------------------------------------------------
# Independent rule checks
# ---------------------------------------------------------------------------------------------


@dataclass
class Before:
    """What the simulator showed at the decision point, before the step."""

    period: int
    on_hand: np.ndarray
    inbound: np.ndarray
    backlog: np.ndarray
    headroom: float | None  # None: the cash rule is off
    audit_rows: int

    @classmethod
    def capture(cls, sim: Simulator) -> Before:
        finance, rules = sim.network.scenario.finance, sim.network.scenario.rules
        cash_rule = rules.cash_rule and math.isfinite(finance.treasury_buffer)
        return cls(
            period=sim.period,
            on_hand=sim.on_hand.copy(),
            inbound=sim.inbound.copy(),
            backlog=sim.backlog.copy(),
            headroom=sim.purchase_headroom() if cash_rule else None,
            audit_rows=len(sim.audit_log.rows) if sim.audit_log is not None else 0,
        )


def _leq(a: np.ndarray | float, b: np.ndarray | float, units: float = UNITS) -> np.ndarray:
    """a ≤ b within an absolute tolerance plus a relative one (for 1e12-sized quantities)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    slack = units + REL * np.maximum(np.abs(a), np.where(np.isfinite(b), np.abs(b), 0.0))
    return a <= b + slack


def _lane_values(network: Network, orders: np.ndarray) -> np.ndarray:
    """Value of each purchase lane's order (P,), incl. the fixed cost of lanes that order anything."""
    cost = network.purchase_unit_cost * network.purchase_offered
    variable = (orders * cost).sum(axis=1)
    return variable + np.where(orders.sum(axis=1) > 0, network.purchase_fixed_cost, 0.0)


def _movements(rows: list[tuple], event: str) -> list[tuple[str, str, str, float]]:
    return [(row[2], row[3], row[4], row[5]) for row in rows if row[1] == event]


def rule_violations(network: Network, before: Before, report: PeriodReport, rows: list[tuple]) -> list[str]:
    """Every way the step's executed decision breaks a rule (empty: all rules hold).

    ``rows`` are the audit-log rows of the step (what was actually ordered, received, sold).
    """
    n = network
    sc = n.scenario
    rules = sc.rules
    d = report.decision
    problems: list[str] = []
    orders, delayed, transfers, allocations = d.orders, d.delayed_orders, d.transfers, d.allocations
    both = orders + delayed

    # Finite, non-negative, whole units, nothing ordered that the supplier does not offer.
    for name, block in (
        ("orders", orders),
        ("delayed", delayed),
        ("transfers", transfers),
        ("allocations", allocations),
    ):
        if not np.isfinite(block).all():
            problems.append(f"{name} not finite: {block}")
            continue
        if (block < -UNITS).any():  # float residue of on-hand stock (≈ -1e-14) is tolerated
            problems.append(f"{name} negative: {block}")
        whole = block[:, n.integer_units]
        if not np.array_equal(whole, np.floor(whole)):
            problems.append(f"{name} not whole units for integer SKUs: {block}")
    if not math.isfinite(d.purchase_value) or d.purchase_value < 0:
        problems.append(f"purchase value {d.purchase_value}")
    if (both[~n.purchase_offered] != 0).any():
        problems.append("order for a SKU the lane's supplier does not offer")

    # Lane and supplier capacities (decision level: released + delayed orders of the period).
    if not _leq(both.sum(axis=1), n.purchase_lane_capacity).all():
        problems.append(f"purchase lane capacity: {both.sum(axis=1)} > {n.purchase_lane_capacity}")
    if len(n.transfer_source) and not _leq(transfers.sum(axis=1), n.transfer_capacity).all():
        problems.append(f"transfer lane capacity: {transfers.sum(axis=1)} > {n.transfer_capacity}")
    per_supplier = np.zeros_like(n.supplier_capacity)
    np.add.at(per_supplier, n.purchase_supplier, both)
    if not _leq(per_supplier, n.supplier_capacity).all():
        problems.append(f"supplier capacity: {per_supplier} > {n.supplier_capacity}")

    # Transfers leave from unreserved stock on hand at the decision point.
    outbound = np.zeros_like(before.on_hand)
    np.add.at(outbound, n.transfer_source, transfers)
    unreserved = np.maximum(before.on_hand - n.reserve_quantity, 0.0)
    if not _leq(outbound, unreserved).all():
        problems.append(f"transfers {outbound} exceed unreserved on-hand {unreserved}")

    # Storage capacity: what is newly sent to a DC fits in its free room.
    incoming = np.zeros(len(n.locations))
    np.add.at(incoming, n.purchase_location, both.sum(axis=1))
    np.add.at(incoming, n.transfer_destination, transfers.sum(axis=1))
    np.subtract.at(incoming, n.transfer_source, transfers.sum(axis=1))
    room = np.maximum(n.location_capacity - before.on_hand.sum(axis=1) - before.inbound.sum(axis=1), 0.0)
    if not (_leq(incoming, room) | (incoming <= UNITS)).all():
        problems.append(f"location capacity: {incoming} new units for room {room}")

    # Minimum order quantities: nothing or at least the minimum.
    for name, block in (("orders", orders), ("delayed", delayed)):
        small = (block > 0) & (block < n.purchase_moq - 1e-9)
        if small.any():
            problems.append(f"{name} below the minimum order quantity: {block} (MOQ {n.purchase_moq})")

    # Purchase value, approval, budget and cash rule.
    value = float(_lane_values(n, orders).sum() + _lane_values(n, delayed).sum())
    if not math.isclose(value, d.purchase_value, rel_tol=1e-9, abs_tol=1e-6):
        problems.append(f"purchase value reported {d.purchase_value}, recomputed {value}")
    approval = rules.purchase_approval
    if approval is not None and not _leq(_lane_values(n, orders), approval.value_limit).all():
        problems.append(f"purchase order above the approval limit {approval.value_limit}: {_lane_values(n, orders)}")
    if rules.purchase_budget_per_period is not None and not _leq(value, rules.purchase_budget_per_period):
        problems.append(f"purchase value {value} above the budget {rules.purchase_budget_per_period}")
    if before.headroom is not None and not _leq(value, max(before.headroom, 0.0)):
        problems.append(f"purchase value {value} above the cash-rule headroom {before.headroom}")

    # What suppliers were actually asked to ship this period (incl. released delayed orders).
    ordered = np.zeros_like(orders)
    purchase_lane = {(n.purchase_supplier[p], n.purchase_location[p]): p for p in range(len(n.purchase_location))}
    for supplier, location, sku, quantity in _movements(rows, "order"):
        p = purchase_lane[(n.suppliers.index(supplier), n.locations.index(location))]
        ordered[p, n.skus.index(sku)] += quantity
    if not _leq(ordered.sum(axis=1), n.purchase_lane_capacity).all():
        problems.append(f"ordered per lane {ordered.sum(axis=1)} above the capacity {n.purchase_lane_capacity}")
    per_supplier = np.zeros_like(n.supplier_capacity)
    np.add.at(per_supplier, n.purchase_supplier, ordered)
    if not _leq(per_supplier, n.supplier_capacity).all():
        problems.append(f"ordered per supplier {per_supplier} above the capacity {n.supplier_capacity}")

    # Customer phase, from the audit log: stock available = on hand − transfers out + receipts.
    receipts = np.zeros_like(before.on_hand)
    for _, location, sku, quantity in _movements(rows, "receipt"):
        receipts[n.locations.index(location), n.skus.index(sku)] += quantity
    shipped = np.zeros_like(allocations)  # (A, S) units shipped per sales lane
    lane_of = {(n.sales_location[a], n.sales_channel[a]): a for a in range(len(n.sales_location))}
    for location, channel, sku, quantity in _movements(rows, "sale"):
        a = lane_of[(n.locations.index(location), n.channels.index(channel))]
        shipped[a, n.skus.index(sku)] += quantity
    available = before.on_hand - outbound + receipts
    per_lane = available[n.sales_location]
    share = n.channel_max_share[n.sales_channel][:, None]
    if not _leq(shipped, allocations).all():
        problems.append(f"shipped {shipped} above the allocations {allocations}")
    if not _leq(shipped.sum(axis=1), n.sales_capacity).all():
        problems.append(f"shipped per sales lane {shipped.sum(axis=1)} above the capacity {n.sales_capacity}")
    if not _leq(allocations, share * per_lane).all():
        problems.append(f"channel share: allocations {allocations} above {share.ravel()} × available {per_lane}")
    sold = np.zeros_like(available)
    np.add.at(sold, n.sales_location, shipped)
    if not _leq(sold, available).all():
        problems.append(f"sold {sold} above the available stock {available}")
    # Reserve stock: channels without an eligible tier at the DC never touch it.
    for loc in range(len(n.locations)):
        if not (n.reserve_quantity[loc] > 0).any():
            continue
        barred = [
            a
            for a in range(len(n.sales_location))
            if n.sales_location[a] == loc and not n.reserve_tiers[loc, n.tier_channel == n.sales_channel[a]].any()
        ]
        if barred:
            taken = shipped[barred].sum(axis=0)
            if not _leq(taken, np.maximum(available[loc] - n.reserve_quantity[loc], 0.0)).all():
                problems.append(f"reserve at {n.locations[loc]} consumed by tiers not allowed to: {taken}")
    # Units: what customers were served equals what was shipped, and stock is conserved.
    served_per_channel = np.zeros((len(n.channels), n.n_skus))
    np.add.at(served_per_channel, n.tier_channel, report.served)
    shipped_per_channel = np.zeros_like(served_per_channel)
    np.add.at(shipped_per_channel, n.sales_channel, shipped)
    if not np.allclose(served_per_channel, shipped_per_channel, atol=UNITS, rtol=REL):
        problems.append(f"served {served_per_channel} ≠ shipped {shipped_per_channel}")
    if not _leq(report.served, report.demand + before.backlog).all() or (report.served < -UNITS).any():
        problems.append("served more than demanded (new + backlog)")
    if (report.short < -UNITS).any():
        problems.append(f"negative shortfall {report.short}")
    vanished = float((available - sold - report.on_hand).sum())
    if not math.isclose(vanished, report.expired_units, rel_tol=1e-9, abs_tol=1e-4):
        problems.append(f"on-hand stock changed by {vanished} units beyond sales; expired {report.expired_units}")
    return problems


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


@settings(max_examples=200, **SETTINGS)
@given(data=scenario_data(), run=st.data())
def test_executed_decisions_satisfy_every_rule(data: dict[str, Any], run: st.DataObject) -> None:
    network = build(data)
    sim = Simulator(network, check_invariants=True, audit=True)
    seed = run.draw(st.integers(0, 2**16), label="seed")
    sim.reset(seed=seed)
    policy = make_policy("base_stock")
    policy.reset(network, seed=seed)
    while not sim.done:
        requests = draw_requests(run, sim, policy)
        before = Before.capture(sim)
        report = sim.step(requests)  # raises InvariantError if the books break
        assert report.invariants_ok
        for rule in report.decision.bound_rules():
            event(f"rule bound: {rule}")
        problems = rule_violations(network, before, report, sim.audit_log.rows[before.audit_rows :])
        assert not problems, f"period {before.period}: " + "; ".join(problems)
        assert math.isfinite(report.reward) and math.isfinite(report.cash)


def _episode(sim: Simulator, seed: int, requests: list[np.ndarray]) -> list[PeriodReport]:
    sim.reset(seed=seed)
    return [sim.step(r.copy()) for r in requests]


def _same(a: list[PeriodReport], b: list[PeriodReport]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.reward == y.reward and x.profit == y.profit and x.cash == y.cash
        assert x.inventory_value == y.inventory_value
        for field in ("on_hand", "demand", "served", "short"):
            assert np.array_equal(getattr(x, field), getattr(y, field)), field
        assert np.array_equal(x.decision.executed, y.decision.executed)
        assert x.costs == y.costs


@settings(max_examples=30, **SETTINGS)
@given(data=scenario_data(), run=st.data())
def test_same_seed_same_episode(data: dict[str, Any], run: st.DataObject) -> None:
    network = build(data)
    horizon = data["episode"]["horizon"]
    n = network.n_decisions
    requests = [
        np.array(run.draw(st.lists(ELEMENT, min_size=n, max_size=n), label="requests"), dtype=float)
        for _ in range(horizon)
    ]
    seed = run.draw(st.integers(0, 2**32 - 1), label="seed")
    sim = Simulator(network, check_invariants=False)
    first = _episode(sim, seed, requests)
    _same(first, _episode(sim, seed, requests))  # reset of a used simulator
    _same(first, _episode(Simulator(network, check_invariants=False), seed, requests))  # a fresh one
    policy_run = [
        run_episode(Simulator(network, check_invariants=False), make_policy("base_stock"), seed) for _ in range(2)
    ]
    _same(*policy_run)


@settings(max_examples=30, **SETTINGS)
@given(data=scenario_data(), seed=st.integers(0, 2**32 - 1))
def test_demand_does_not_depend_on_the_policy(data: dict[str, Any], seed: int) -> None:
    network = build(data)
    demand = []
    for policy in (make_policy("base_stock"), make_policy("fixed", {"quantity": "0"})):
        sim = Simulator(network, check_invariants=False)
        sim.reset(seed=seed)
        at_reset = sim.tier_demand.copy()
        reports = run_episode(sim, policy, seed=seed)
        assert np.array_equal(sim.tier_demand, at_reset)
        assert np.array_equal(np.stack([r.demand for r in reports]), at_reset[: len(reports)])
        demand.append(at_reset)
    assert np.array_equal(demand[0], demand[1])


@settings(max_examples=60, **SETTINGS)
@given(
    sizes=st.tuples(st.integers(1, 30), st.integers(1, 5), st.integers(1, 5), st.integers(1, 6)),
    seed=st.integers(0, 2**32 - 1),
    integer_units=st.sampled_from([True, False, "mixed"]),
    approval_action=st.sampled_from(["cap", "delay", "none"]),
    horizon=st.integers(1, 60),
)
def test_generated_scenarios_always_validate(sizes, seed, integer_units, approval_action, horizon) -> None:
    n_skus, n_locations, n_channels, tiers = sizes
    options = {
        "tiers_per_channel": tiers,
        "integer_units": integer_units,
        "approval_action": approval_action,
        "horizon": horizon,
    }
    data = generate_scenario(n_skus, n_locations, n_channels, seed, **options)
    assert data == generate_scenario(n_skus, n_locations, n_channels, seed, **options)
    for channel in data["channels"]:
        assert sum(t["demand_share"] for t in channel["tiers"]) == pytest.approx(1.0, abs=1e-12)
    network = build(data)
    assert (network.n_skus, len(network.locations), len(network.channels)) == (
        n_skus,
        n_locations,
        n_channels,
    )


def test_generator_rejects_unknown_options() -> None:
    with pytest.raises(ValueError, match="unknown option"):
        generate_scenario(2, 2, 2, cost_methd="fifo")
    with pytest.raises(ValueError, match="cost_method"):
        generate_scenario(2, 2, 2, cost_method="lifo")


# ---------------------------------------------------------------------------------------------
# Regressions: simulator bugs the properties above found (fixed)
# ---------------------------------------------------------------------------------------------


def _one_sku(**changes: Any) -> dict[str, Any]:
    """A minimal scenario: one SKU, one supplier, one DC, one channel; ``changes`` merged per section."""
    data: dict[str, Any] = {
        "name": "minimal",
        "products": [{"id": "item", "unit_cost": 10.0, "price": 20.0}],
        "suppliers": [{"id": "supplier", "items": {"item": {"unit_cost": 10.0}}}],
        "locations": [{"id": "dc", "opening_stock": 0}],
        "channels": [{"id": "shop", "tiers": [{"id": "all", "priority": 0, "demand_share": 1.0}]}],
        "lanes": [{"from": "supplier", "to": "dc", "lead_time": 2}, {"from": "dc", "to": "shop"}],
        "demand": {"streams": [{"channel": "shop", "distribution": "poisson", "mean": 50}]},
        "rules": {"cash_rule": False},
        "episode": {"horizon": 5},
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def test_cash_invariant_allows_periods_without_purchases() -> None:
    """Regression: the cash-rule invariant once raised in a period with no purchase at all."""
    # 50 units of demand a period, nothing in stock, a 10/unit shortage penalty: period 0 costs
    # ≈ 500 of penalties in cash, taking cash (100) below the buffer (50) with no purchase at all.
    data = _one_sku(
        channels=[
            {
                "id": "shop",
                "tiers": [{"id": "all", "priority": 0, "demand_share": 1.0, "penalty_per_unit_short": 10.0}],
            }
        ],
        finance={"opening_cash": 100.0, "treasury_buffer": 50.0},
        rules={"cash_rule": True},
    )
    sim = Simulator(build(data), check_invariants=True)
    sim.reset(seed=0)
    for _ in range(3):
        headroom = sim.purchase_headroom()
        report = sim.step(np.full(sim.network.n_decisions, 30.0))
        assert report.invariants_ok
        assert report.decision.purchase_value <= max(headroom, 0.0) + 1e-6
    assert headroom < 0  # the situation the regression is about was reached


def test_released_delayed_orders_respect_lane_capacity() -> None:
    """Regression: orders delayed for approval were released on top of new ones, over capacity."""
    # Lane capacity 10, approval above 50: period 0 asks 10 (value 100 → delayed one period);
    # period 1 asks 4 (value 40, released at once) and the delayed 10 come due: 14 ordered.
    data = _one_sku(
        lanes=[
            {"from": "supplier", "to": "dc", "lead_time": 2, "capacity_per_period": 10},
            {"from": "dc", "to": "shop"},
        ],
        rules={
            "cash_rule": False,
            "purchase_approval": {"value_limit": 50, "action": "delay", "delay_periods": 1},
        },
    )
    sim = Simulator(build(data), check_invariants=True, audit=True)
    sim.reset(seed=0)
    for period, request in enumerate((10.0, 4.0, 0.0)):
        rows = len(sim.audit_log.rows)
        sim.step(np.array([request]))
        ordered = sum(q for _, _, _, q in _movements(sim.audit_log.rows[rows:], "order"))
        assert ordered <= 10, f"period {period}: {ordered} units ordered on a lane of capacity 10"


def test_sales_lane_capacity_is_enforced() -> None:
    """Regression: a DC → channel lane's capacity_per_period was compiled but never enforced."""
    data = _one_sku(
        locations=[{"id": "dc", "opening_stock": 100}],
        lanes=[
            {"from": "supplier", "to": "dc", "lead_time": 2},
            {"from": "dc", "to": "shop", "capacity_per_period": 5},
        ],
    )
    sim = Simulator(build(data), check_invariants=True)
    sim.reset(seed=0)
    report = sim.step(np.zeros(sim.network.n_decisions))
    assert report.served.sum() <= 5


def test_huge_finite_requests_do_not_crash() -> None:
    """Regression: 1e19 units from an unreliable supplier overflowed int64 in the binomial draw."""
    data = _one_sku(suppliers=[{"id": "supplier", "reliability": 0.9, "items": {"item": {"unit_cost": 10.0}}}])
    sim = Simulator(build(data), check_invariants=True)
    sim.reset(seed=0)
    for request in (1e19, 1e300, 1e12):
        report = sim.step(np.array([request]))
        assert report.invariants_ok and math.isfinite(report.cash)


def test_storage_capacity_holds_when_transfers_shrink() -> None:
    """Regression: a DC's orders were sized against transfers out that the destination then cut."""
    # dc_central is full (100/100) and plans to push 100 units to dc_1 while ordering 100 more;
    # dc_1 has room for 10 only, so the transfer is cut to ~1 unit, but the 100 ordered stay.
    data = _one_sku(
        locations=[
            {"id": "dc_central", "capacity": 100, "opening_stock": 100},
            {"id": "dc_1", "capacity": 100, "opening_stock": 90},
        ],
        lanes=[
            {"from": "supplier", "to": "dc_central", "lead_time": 2},
            {"from": "supplier", "to": "dc_1", "lead_time": 2},
            {"from": "dc_central", "to": "dc_1", "lead_time": 1},
            {"from": "dc_1", "to": "shop"},
        ],
    )
    network = build(data)
    assert network.decision_names == [
        "order/supplier/dc_central/item",
        "order/supplier/dc_1/item",
        "transfer/dc_central/dc_1/item",
    ]
    sim = Simulator(network, check_invariants=True, audit=True)
    sim.reset(seed=0)
    before = Before.capture(sim)
    report = sim.step(np.array([100.0, 1000.0, 100.0]))
    position = sim.on_hand.sum(axis=1) + sim.inbound.sum(axis=1)
    assert position[0] <= 100, f"dc_central holds/awaits {position[0]} units, capacity 100"
    assert not rule_violations(network, before, report, sim.audit_log.rows[before.audit_rows :])


def test_huge_order_then_expiry_keeps_units_conserved() -> None:
    # 1e12 fractional units, then 31.51 more (in transit together: inbound 1e12 + 31.51 loses
    # the last digits); the 1e12 expire after 2 periods, leaving inbound at 9.8e-6 instead of 0.
    data = _one_sku(
        products=[{"id": "item", "unit_cost": 10.0, "price": 20.0, "shelf_life": 2, "integer_units": False}],
        episode={"horizon": 8},
    )
    sim = Simulator(build(data), check_invariants=True)
    sim.reset(seed=0)
    for request in (1e12, 31.51, 0, 0, 0, 0, 0, 0):
        report = sim.step(np.array([request]))
        assert report.invariants_ok
    assert abs(float(sim.inbound.sum())) < 1e-6  # no phantom units in transit


def test_storage_capacity_counts_orders_released_from_approval() -> None:
    """Regression: released approvals take their share of a DC's room before new orders."""
    data = _one_sku(
        locations=[{"id": "dc", "capacity": 30, "opening_stock": 0}],
        rules={"cash_rule": False, "purchase_approval": {"value_limit": 150, "action": "delay", "delay_periods": 1}},
    )
    sim = Simulator(build(data), check_invariants=True)
    sim.reset(seed=0)
    sim.step(np.array([20.0]))  # value 200 > 150: held one period, released in period 1
    report = sim.step(np.array([14.0]))  # 20 released + 14 new would exceed the room of 30
    assert report.decision.orders.sum() <= 10
    assert sim.on_hand.sum() + sim.inbound.sum() <= 30
