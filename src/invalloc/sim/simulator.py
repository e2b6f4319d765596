"""The SimPy discrete-event simulator of a supply chain with accounting-grade books.

Time is measured in periods. Each period runs through the same business processes,
one SimPy process per actor, at fixed phases inside the period::

    t + 0.0  decision point   the policy's requests pass the feasibility layer; transfers leave
    t + 0.1  suppliers         released purchase orders are shipped (partial deliveries, lead times)
    t + 0.2  receiving         shipments due this period are put away into cost layers
    t + 0.3  customers         demand arrives and is served tier by tier; shortfalls backlogged or lost
    t + 0.6  customer arrival  shipments to customers due this period are delivered and invoiced
    t + 0.7  treasury          payables and receivables that fall due are settled
    t + 0.9  period close      holding cost, interest, expiry, lower of cost and NRV, KPIs, invariants

Quantities are numpy arrays over SKUs owned by the simulator (one event moves a whole
vector); SimPy sequences the events. Shapes follow :mod:`invalloc.sim.network`.

Use :meth:`Simulator.reset` then :meth:`Simulator.step` per period (the Gymnasium
environment does), or :func:`run_episode` with a policy.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import simpy

from invalloc.sim.audit import AuditLog
from invalloc.sim.books import NEVER, Account, CostLayers, Ledger
from invalloc.sim.demand import expected_demand, generate_channel_demand, load_demand_trace, split_over_tiers
from invalloc.sim.feasibility import FeasibilityContext, FeasibilityLayer, FeasibleDecision
from invalloc.sim.network import Network

PHASE_SUPPLIERS = 0.1
PHASE_RECEIVING = 0.2
PHASE_CUSTOMERS = 0.3
PHASE_DELIVERIES = 0.6
PHASE_TREASURY = 0.7
PHASE_CLOSE = 0.9

#: Money tolerance of the trial balance and of the cash rule check (currency units).
MONEY_TOLERANCE = 1e-6
#: Unit tolerance of the conservation checks.
UNIT_TOLERANCE = 1e-6


class InvariantError(AssertionError):
    """The books or the unit flows broke an invariant: always a simulator bug."""


@dataclass
class PeriodReport:
    """What happened in one period (money in currency units, quantities in units)."""

    period: int
    reward: float  # discounted, on the scenario's reward basis
    undiscounted_reward: float
    profit: float  # accrual profit of the period
    revenue: float
    costs: dict[str, float]
    demand: np.ndarray  # (T, S) new demand this period
    served_new: np.ndarray  # (T, S) units of this period's demand served this period
    served: np.ndarray  # (T, S) all units served (incl. backlog)
    short: np.ndarray  # (T, S) units unserved at period end (backlog or lost)
    decision: FeasibleDecision
    cash: float
    inventory_value: float
    on_hand: np.ndarray  # (D, S) at period end
    written_down: float
    expired_units: float
    invariants_ok: bool


@dataclass
class _Flows:
    """Cumulative unit flows per DC × SKU, for the conservation invariant."""

    into: np.ndarray
    out_of: np.ndarray
    to_customers: np.ndarray = field(default=None)  # type: ignore[assignment]


class Simulator:
    """One supply chain, simulated period by period.

    :param network: the compiled scenario (:func:`invalloc.sim.network.compile_network`).
    :param check_invariants: check the books and unit flows every period (on in tests,
        off for speed in training); a break raises :class:`InvariantError`.
    :param audit: keep an audit log of every order, shipment, receipt, sale, payment,
        write-down and rule intervention (:attr:`audit_log`).
    :param demand_trace: CSV ``period,channel,sku,quantity`` replayed instead of random demand
        (overrides the scenario's own trace).
    :param periods: episode length; defaults to the scenario's horizon.
    """

    def __init__(
        self,
        network: Network,
        *,
        check_invariants: bool = True,
        audit: bool = False,
        demand_trace: str | Path | None = None,
        periods: int | None = None,
    ) -> None:
        self.network = network
        scenario = network.scenario
        self.periods = periods or scenario.episode.horizon
        self.check_invariants = check_invariants
        self.audit_enabled = audit
        self.feasibility = FeasibilityLayer(network)
        trace = demand_trace
        if trace is None and scenario.demand.trace is not None:
            trace = network.loaded.base_dir / scenario.demand.trace
        self._trace = load_demand_trace(network, trace, self.periods) if trace is not None else None
        self._expected = expected_demand(network, self.periods + 1)
        self._tier_price = network.tier_price()
        self._lost_sales = scenario.episode.unmet_demand == "lost_sales"
        self._economic = scenario.episode.reward_basis == "economic"
        self._discount = scenario.episode.discount
        finance = scenario.finance
        self._credit_line = finance.credit_line
        self._buffer = finance.treasury_buffer
        self._interest_per_period = finance.cost_of_capital * scenario.episode.period_days / 365.0
        self._cash_rule = scenario.rules.cash_rule and np.isfinite(self._buffer)
        self._budget = scenario.rules.purchase_budget_per_period
        self._contract_first = scenario.rules.serve_contract_minimums_first and bool(
            (network.tier_min_fill_rate > 0).any()
        )
        self._lanes_of_channel = [np.flatnonzero(network.sales_channel == c) for c in range(len(network.channels))]
        self._nrv_active = finance.lower_of_cost_and_nrv and bool(np.isfinite(network.net_realisable_value).any())
        self._perishable = bool((network.shelf_life > 0).any())
        self._payment_window = max((int(s.maximum) for s in network.purchase_lead_time), default=0)
        self._has_reserve = bool((network.reserve_quantity > 0).any())
        self._ring = network.max_lead_time + 1
        self._simple_sales = len(network.tiers) == 1 and len(network.sales_location) == 1
        self._unreliable = bool((network.purchase_reliability < 1).any())
        self._sales_lead_fixed = all(s.is_fixed for s in network.sales_lead_time)
        self._sales_slots_offset = np.array([int(s.values[0]) for s in network.sales_lead_time])
        self._backorder_replenishment = scenario.episode.backorder_replenishment
        self._track_shortfall = self._backorder_replenishment or bool(network.decision_shortfall_penalty.any())
        self.reset(seed=0)

    # ------------------------------------------------------------------ episode set-up
    def reset(self, seed: int | None = None) -> None:
        """Start a new episode; the same seed gives the same episode bit for bit.

        Random streams are independent: demand is drawn at reset from its own stream, so it
        does not depend on the policy (common random numbers); supplier lead times and
        partial deliveries use a second stream.
        """
        n = self.network
        demand_seed, supply_seed, split_seed = np.random.SeedSequence(seed).spawn(3)
        self.supply_rng = np.random.default_rng(supply_seed)
        if self._trace is not None:
            channel_demand = self._trace
        else:
            channel_demand = generate_channel_demand(n, self.periods, np.random.default_rng(demand_seed))
        self.tier_demand = split_over_tiers(n, channel_demand, np.random.default_rng(split_seed))  # (H, T, S)

        n_loc, n_sku, n_tier = len(n.locations), n.n_skus, len(n.tiers)
        self.period = 0
        self.env = simpy.Environment()
        self.ledger = Ledger()
        self.layers = CostLayers(n_loc, n_sku, n.scenario.finance.cost_method == "weighted_average")
        self.on_hand = n.opening_stock.copy()
        opening_expiry = np.where(n.shelf_life > 0, n.shelf_life, NEVER)
        self.layers.receive(
            n.opening_stock,
            np.broadcast_to(n.standard_cost, n.opening_stock.shape),
            np.broadcast_to(opening_expiry, n.opening_stock.shape),
        )
        opening_value = self.layers.value()
        self.ledger.post(Account.INVENTORY, Account.EQUITY, opening_value)
        self.ledger.post(Account.CASH, Account.EQUITY, n.scenario.finance.opening_cash)
        self.backlog = np.zeros((n_tier, n_sku))
        # Goods in transit, by arrival period modulo the ring length (R, D, S): one layer of
        # the ring collects everything that arrives at a DC in the same period.
        ring = self._ring
        self.transit_units = np.zeros((ring, n_loc, n_sku))
        self.transit_value = np.zeros((ring, n_loc, n_sku))
        self.transit_expires = np.full((ring, n_loc, n_sku), NEVER, dtype=np.int64)
        self.inbound = np.zeros((n_loc, n_sku))  # units in transit to each DC
        # Goods on the way to customers, by delivery period: units and cost per source DC,
        # revenue per sales lane (A,).
        self.delivery_units = np.zeros((ring, n_loc, n_sku))
        self.delivery_cost = np.zeros((ring, n_loc, n_sku))
        self.delivery_revenue = np.zeros((ring, len(n.sales_location)))
        self.pending_approval: dict[int, np.ndarray] = {}  # release period → (P, S) orders
        self.payables: dict[int, float] = defaultdict(float)  # due period → money
        self.receivables: dict[int, float] = defaultdict(float)
        self.flows = _Flows(into=n.opening_stock.copy(), out_of=np.zeros((n_loc, n_sku)))
        self.audit_log = AuditLog() if self.audit_enabled else None
        self.min_cash = float(self.ledger.balance[Account.CASH])
        self._requests: np.ndarray | None = None
        self.open_requests = np.zeros(n.n_decisions)  # backordered replenishment, units
        self._shortfall_penalty = 0.0
        self._report: PeriodReport | None = None
        for process in (
            self._decision_point,
            self._suppliers,
            self._receiving,
            self._customers,
            self._customer_deliveries,
            self._treasury,
            self._period_close,
        ):
            self.env.process(process())

    # ------------------------------------------------------------------ public stepping
    @property
    def done(self) -> bool:
        return self.period >= self.periods

    def step(self, requests: np.ndarray) -> PeriodReport:
        """Run one period with the policy's requested decisions (n_decisions,) in units."""
        if self.done:
            raise RuntimeError("the episode is over; call reset()")
        self._requests = requests
        self.env.run(until=self.period + 1)
        report = self._report
        self.period += 1
        assert report is not None
        return report

    # ------------------------------------------------------------------ state for policies
    def context(self) -> FeasibilityContext:
        """The state the feasibility layer sees at this period's decision point."""
        return FeasibilityContext(
            on_hand=self.on_hand,
            inbound=self.inbound,
            purchase_headroom=self.purchase_headroom() if self._cash_rule else np.inf,
            purchase_budget=np.inf if self._budget is None else self._budget,
        )

    def arriving(self, period: int) -> np.ndarray:
        """Units arriving at each DC in ``period`` (D, S), for ``period`` within the longest lead time."""
        return self.transit_units[period % self._ring].copy()

    def pipeline(self, horizon: int) -> np.ndarray:
        """Units in transit to each DC by arrival period t … t+horizon−1, shape (horizon, D, S)."""
        slots = (self.period + np.arange(horizon)) % self._ring
        out = self.transit_units[slots]
        out[np.arange(horizon) >= self._ring] = 0.0
        return out

    @property
    def cash(self) -> float:
        return float(self.ledger.balance[Account.CASH])

    def payables_due_within(self, periods: int) -> float:
        return float(sum(v for due, v in self.payables.items() if due < self.period + periods))

    def purchase_headroom(self) -> float:
        """Money a purchase may commit now under the cash rule (may be negative)."""
        committed = sum(
            float(self.feasibility._order_value(orders).sum()) for orders in self.pending_approval.values()
        )
        return (
            self.cash
            + self._credit_line
            - self.payables_due_within(self._payment_window + 1)
            - committed
            - self._buffer
        )

    def demand_forecast(self, periods_ahead: int = 0) -> np.ndarray:
        """Expected new demand per tier and SKU in period t + ``periods_ahead`` (T, S).

        From the scenario's demand model (its means, trend and seasonality), which a
        planner knows; never from the realised demand.
        """
        t = min(self.period + periods_ahead, self.periods)
        n = self.network
        channel_mean = self._expected[t]  # (C, S)
        if self._trace is not None and not n.scenario.demand.streams:
            channel_mean = self._trace.mean(axis=0)
        return channel_mean[n.tier_channel] * n.tier_share[:, None]

    # ------------------------------------------------------------------ processes
    def _decision_point(self):
        """Once a period: the policy's requests become an executable decision."""
        n = self.network
        while True:
            self.ledger.start_period()
            decision = self.feasibility.project(
                self._requests, self.context(), self.open_requests if self._backorder_replenishment else None
            )
            self._decision = decision
            if self._track_shortfall:
                shortfall = decision.shortfall
                self._shortfall_penalty = float(shortfall @ n.decision_shortfall_penalty)
                if self._backorder_replenishment:
                    self.open_requests = shortfall
            self._period_purchases = 0.0
            self._period_freight = 0.0
            if self._cash_rule and decision.purchase_value > 0:
                # The invariant: what the rule allowed, recorded before any money moves. Headroom
                # may already be negative (bills falling due); then no purchase may be made.
                self._headroom_after_purchases = self.purchase_headroom() - decision.purchase_value
            else:
                self._headroom_after_purchases = 0.0
            if decision.delayed_orders.any():
                release = self.period + n.scenario.rules.purchase_approval.delay_periods
                self.pending_approval[release] = self.pending_approval.get(release, 0) + decision.delayed_orders
            if len(n.transfer_source):
                self._dispatch_transfers(decision.transfers)
            if self.audit_log is not None:
                self.audit_log.interventions(self.period, decision)
            yield self.env.timeout(1)

    def _dispatch_transfers(self, transfers: np.ndarray) -> None:
        """Transfers leave their source DC at FIFO cost and travel to the destination DC."""
        n = self.network
        moving = transfers.sum(axis=1) > 0
        if not moving.any():
            return
        outbound = np.zeros_like(self.on_hand)
        np.add.at(outbound, n.transfer_source, transfers)
        cost, expires = self.layers.issue(outbound)
        self.on_hand -= outbound
        self.flows.out_of += outbound
        # Lanes leaving one DC in the same period share the FIFO cost of the units it issued.
        share = np.divide(transfers, outbound[n.transfer_source], out=np.zeros_like(transfers),
                          where=transfers > 0)
        freight = transfers * n.transfer_shipping_cost[:, None]
        # IAS 2.10: transport to bring stock to its present location is part of its cost.
        value = share * cost[n.transfer_source] + freight
        lane_expires = np.where(transfers > 0, expires[n.transfer_source], NEVER)
        self.ledger.post(Account.INVENTORY_IN_TRANSIT, Account.INVENTORY, float(cost.sum()))
        self.ledger.post(Account.INVENTORY_IN_TRANSIT, Account.CASH, float(freight.sum()))
        self._period_freight += float(freight.sum())
        leads = np.array([sampler.draw(self.supply_rng) for sampler in n.transfer_lead_time])
        self._put_in_transit(leads, n.transfer_destination, transfers, value, lane_expires)
        if self.audit_log is not None:
            for x in np.flatnonzero(moving):
                self.audit_log.movements(self.period, "transfer", n.locations[n.transfer_source[x]],
                                         n.locations[n.transfer_destination[x]], n.skus, transfers[x], value[x])

    def _put_in_transit(self, leads: np.ndarray, destinations: np.ndarray, units: np.ndarray,
                        value: np.ndarray, expires: np.ndarray) -> None:
        """Lanes' shipments (lanes, S) go into the ring slot of their arrival period."""
        slots = (self.period + leads) % self._ring
        np.add.at(self.transit_units, (slots, destinations), units)
        np.add.at(self.transit_value, (slots, destinations), value)
        np.minimum.at(self.transit_expires, (slots, destinations), expires)
        np.add.at(self.inbound, destinations, units)
        np.add.at(self.flows.into, destinations, units)

    def _suppliers(self):
        """Suppliers ship the purchase orders released to them, possibly short, with lead times."""
        yield self.env.timeout(PHASE_SUPPLIERS)
        while True:
            orders = self._decision.orders
            released = self.pending_approval.pop(self.period, None)
            if released is not None:
                orders = orders + released
            if orders.any():
                self._fulfil_orders(orders)
            yield self.env.timeout(1)

    def _fulfil_orders(self, orders: np.ndarray) -> None:
        """Each supplier ships what it can of each order (binomial per unit when unreliable)."""
        n = self.network
        shipped = orders
        if self._unreliable:
            ratio = n.purchase_reliability[:, None]
            whole = self.supply_rng.binomial(orders.astype(np.int64), np.broadcast_to(ratio, orders.shape))
            shipped = np.where(n.integer_units, whole, orders * ratio)
        value = shipped * n.purchase_unit_cost
        freight = shipped * n.purchase_shipping_cost[:, None]
        ordering = np.where(orders.sum(axis=1) > 0, n.purchase_fixed_cost, 0.0)
        invoices = value.sum(axis=1) + ordering
        self.ledger.post(Account.INVENTORY_IN_TRANSIT, Account.PAYABLES, float(value.sum()))
        self.ledger.post(Account.ORDERING, Account.PAYABLES, float(ordering.sum()))
        self.ledger.post(Account.INVENTORY_IN_TRANSIT, Account.CASH, float(freight.sum()))
        for p in np.flatnonzero(invoices):
            self.payables[self.period + int(n.purchase_payment_periods[p])] += float(invoices[p])
        self._period_purchases += float(invoices.sum())
        self._period_freight += float(freight.sum())
        leads = np.array([sampler.draw(self.supply_rng) for sampler in n.purchase_lead_time])
        expires = np.where(n.shelf_life > 0, self.period + leads[:, None] + n.shelf_life, NEVER)
        self._put_in_transit(leads, n.purchase_location, shipped, value + freight, expires)
        if self.audit_log is not None:
            for p in np.flatnonzero(orders.sum(axis=1) > 0):
                supplier = n.suppliers[n.purchase_supplier[p]]
                location = n.locations[n.purchase_location[p]]
                self.audit_log.movements(self.period, "order", supplier, location, n.skus, orders[p],
                                         orders[p] * n.purchase_unit_cost[p])
                self.audit_log.movements(self.period, "supplier_shipment", supplier, location, n.skus,
                                         shipped[p], value[p] + freight[p])

    def _receiving(self):
        """DCs put away everything that arrives this period, one cost layer per DC × SKU."""
        n = self.network
        yield self.env.timeout(PHASE_RECEIVING)
        while True:
            slot = self.period % self._ring
            units = self.transit_units[slot]
            if units.any():
                value = self.transit_value[slot]
                unit_cost = np.divide(value, units, out=np.zeros_like(units), where=units > 0)
                self.layers.receive(units, unit_cost, self.transit_expires[slot])
                self.on_hand += units
                self.inbound -= units
                self.ledger.post(Account.INVENTORY, Account.INVENTORY_IN_TRANSIT, float(value.sum()))
                if self.audit_log is not None:
                    for d in np.flatnonzero(units.sum(axis=1)):
                        self.audit_log.movements(self.period, "receipt", "in_transit", n.locations[d], n.skus,
                                                 units[d], value[d])
                units[:] = 0.0
                value[:] = 0.0
                self.transit_expires[slot] = NEVER
            yield self.env.timeout(1)

    def _customers(self):
        """Customers' demand arrives; tiers are served in priority order, contract minimums first."""
        n = self.network
        yield self.env.timeout(PHASE_CUSTOMERS)
        while True:
            new_demand = self.tier_demand[self.period]
            wanted = new_demand + self.backlog
            allocations = self.feasibility.limit_allocations(self._decision, self.on_hand)
            served, shipped = self._serve(wanted, allocations)
            short = wanted - served
            self._served_new = np.maximum(served - self.backlog, 0.0)
            self._served, self._short, self._new_demand = served, short, new_demand
            self.backlog = np.zeros_like(short) if self._lost_sales else short
            self._penalty = float((n.tier_penalty[:, None] * short).sum()) + self._shortfall_penalty
            self._dispatch_sales(shipped)
            yield self.env.timeout(1)

    def _serve(self, wanted: np.ndarray, allocations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Serve ``wanted`` (T, S) from the DCs' stock within the sales lanes' allocations.

        Returns units served per tier (T, S) and units shipped per sales lane and tier (A, T, S).
        Reserve stock at a DC is only available to the tiers named for it.
        """
        n = self.network
        reserve_left = np.minimum(n.reserve_quantity, self.on_hand) if self._has_reserve else None
        free = self.on_hand - reserve_left if reserve_left is not None else self.on_hand.copy()
        allocation_left = allocations.copy()
        served = np.zeros_like(wanted)
        shipped = np.zeros((len(n.sales_location), *wanted.shape))
        targets = []
        if self._contract_first:
            minimum = n.tier_min_fill_rate[:, None] * wanted
            targets.append(np.where(n.integer_units, np.ceil(minimum - 1e-9), minimum))
        targets.append(wanted)
        for target in targets:
            for t in n.tier_order:
                need = target[t] - served[t]
                if not need.any():
                    continue
                for a in self._lanes_of_channel[n.tier_channel[t]]:
                    d = n.sales_location[a]
                    from_free = np.minimum(np.minimum(need, allocation_left[a]), free[d])
                    take = from_free
                    free[d] -= from_free
                    if reserve_left is not None and n.reserve_tiers[d, t]:
                        from_reserve = np.minimum(np.minimum(need - from_free, allocation_left[a] - from_free), reserve_left[d])
                        reserve_left[d] -= from_reserve
                        take = from_free + from_reserve
                    allocation_left[a] -= take
                    served[t] += take
                    shipped[a, t] += take
                    need = need - take
                    if not need.any():
                        break
        return served, shipped

    def _dispatch_sales(self, shipped: np.ndarray) -> None:
        """Issue the units shipped per sales lane and tier (A, T, S) from cost layers, FIFO."""
        n = self.network
        lane_units = shipped.sum(axis=1)  # (A, S)
        if not lane_units.any():
            return
        outbound = np.zeros_like(self.on_hand)
        np.add.at(outbound, n.sales_location, lane_units)
        cost, _ = self.layers.issue(outbound)
        self.on_hand -= outbound
        self.flows.out_of += outbound
        freight = float((lane_units.sum(axis=1) * n.sales_shipping_cost).sum())
        self.ledger.post(Account.SHIPPING, Account.CASH, freight)
        self.ledger.post(Account.INVENTORY_IN_TRANSIT, Account.INVENTORY, float(cost.sum()))
        self._period_freight += freight
        revenue = (shipped * self._tier_price[None]).sum(axis=(1, 2))  # (A,)
        if self._sales_lead_fixed:
            slots = self._sales_slots_offset
        else:
            slots = np.array([sampler.draw(self.supply_rng) for sampler in n.sales_lead_time])
        slots = (self.period + slots) % self._ring
        share = np.divide(lane_units, outbound[n.sales_location], out=np.zeros_like(lane_units),
                          where=lane_units > 0)
        np.add.at(self.delivery_units, (slots, n.sales_location), lane_units)
        np.add.at(self.delivery_cost, (slots, n.sales_location), share * cost[n.sales_location])
        np.add.at(self.delivery_revenue, (slots, np.arange(len(slots))), revenue)
        if self.audit_log is not None:
            for a in np.flatnonzero(lane_units.sum(axis=1)):
                price = np.divide((shipped[a] * self._tier_price).sum(axis=0), lane_units[a],
                                  out=np.zeros(n.n_skus), where=lane_units[a] > 0)
                self.audit_log.movements(self.period, "sale", n.locations[n.sales_location[a]],
                                         n.channels[n.sales_channel[a]], n.skus, lane_units[a], price * lane_units[a])

    def _customer_deliveries(self):
        """Goods reaching customers this period are delivered and invoiced (revenue, COGS)."""
        n = self.network
        yield self.env.timeout(PHASE_DELIVERIES)
        while True:
            slot = self.period % self._ring
            revenue = self.delivery_revenue[slot]
            if revenue.any() or self.delivery_units[slot].any():
                self.ledger.post(Account.RECEIVABLES, Account.REVENUE, float(revenue.sum()))
                cost = float(self.delivery_cost[slot].sum())
                self.ledger.post(Account.COST_OF_GOODS_SOLD, Account.INVENTORY_IN_TRANSIT, cost)
                for a in np.flatnonzero(revenue):
                    due = self.period + int(n.channel_payment_periods[n.sales_channel[a]])
                    self.receivables[due] += float(revenue[a])
                revenue[:] = 0.0
                self.delivery_units[slot] = 0.0
                self.delivery_cost[slot] = 0.0
            yield self.env.timeout(1)

    def _treasury(self):
        """Bills and customer payments that fall due this period are settled in cash."""
        yield self.env.timeout(PHASE_TREASURY)
        while True:
            paid = self.payables.pop(self.period, 0.0)
            collected = self.receivables.pop(self.period, 0.0)
            self.ledger.post(Account.PAYABLES, Account.CASH, paid)
            self.ledger.post(Account.CASH, Account.RECEIVABLES, collected)
            if self.audit_log is not None:
                self.audit_log.payment(self.period, paid, collected)
            yield self.env.timeout(1)

    def _period_close(self):
        """Close the period: holding cost, penalties, interest, expiry, NRV; report and check."""
        n = self.network
        yield self.env.timeout(PHASE_CLOSE)
        while True:
            ledger = self.ledger
            holding = float((n.holding_cost * self.on_hand).sum())
            ledger.post(Account.HOLDING, Account.CASH, holding)
            ledger.post(Account.PENALTIES, Account.CASH, self._penalty)
            interest = self._interest_per_period * max(0.0, -self.cash)
            ledger.post(Account.INTEREST, Account.CASH, interest)
            expired_units, written = 0.0, 0.0
            if self._perishable:
                expired, expired_cost = self.layers.expire(self.period + 1)
                if expired_cost or expired.any():
                    self.on_hand -= expired
                    self.flows.out_of += expired
                    ledger.post(Account.WRITE_DOWNS, Account.INVENTORY, expired_cost)
                    expired_units, written = float(expired.sum()), expired_cost
            if self._nrv_active:
                write_down = self.layers.write_down_to(n.net_realisable_value)
                ledger.post(Account.WRITE_DOWNS, Account.INVENTORY, write_down)
                written += write_down
            if self.audit_log is not None and (written or holding or self._penalty):
                self.audit_log.close(self.period, holding, self._penalty, interest, written, expired_units)
            self.min_cash = min(self.min_cash, self.cash)
            revenue = -ledger.movement(Account.REVENUE)
            profit = ledger.period_profit()
            costs = {
                "cost_of_goods_sold": ledger.movement(Account.COST_OF_GOODS_SOLD),
                "purchases": self._period_purchases,
                "holding": holding,
                "shipping": self._period_freight,
                "penalties": self._penalty,
                "interest": interest,
                "write_downs": written,
            }
            if self._economic:
                sales_value = float(self._served_value())
                undiscounted = sales_value - self._period_purchases - self._period_freight - holding - self._penalty - interest
            else:
                undiscounted = profit
            ok = self._check() if self.check_invariants else True
            self._report = PeriodReport(
                period=self.period,
                reward=undiscounted * self._discount**self.period,
                undiscounted_reward=undiscounted,
                profit=profit,
                revenue=revenue,
                costs=costs,
                demand=self._new_demand,
                served_new=self._served_new,
                served=self._served,
                short=self._short,
                decision=self._decision,
                cash=self.cash,
                inventory_value=ledger.balance[Account.INVENTORY],
                on_hand=self.on_hand.copy(),
                written_down=written,
                expired_units=expired_units,
                invariants_ok=ok,
            )
            yield self.env.timeout(1)

    def _served_value(self) -> float:
        """Sales value of the units served this period (economic basis: earned when shipped)."""
        return float((self._served * self._tier_price).sum())

    # ------------------------------------------------------------------ invariants
    def _check(self) -> bool:
        """Check every invariant; raise :class:`InvariantError` naming the first that broke."""
        ledger = self.ledger
        problems = []
        balance = ledger.trial_balance()
        scale = max(1.0, max(abs(b) for b in ledger.balance))
        if abs(balance) > MONEY_TOLERANCE * scale:
            problems.append(f"trial balance is {balance:.6g}, not 0")
        layer_units = self.layers.on_hand()
        if not np.allclose(layer_units, self.on_hand, atol=UNIT_TOLERANCE):
            problems.append("cost-layer quantities differ from on-hand units")
        if (self.on_hand < -UNIT_TOLERANCE).any():
            problems.append("negative on-hand stock")
        expected = self.flows.into - self.flows.out_of
        actual = self.on_hand + self.inbound
        if not np.allclose(expected, actual, atol=UNIT_TOLERANCE * max(1.0, float(np.abs(expected).max(initial=0)))):
            problems.append("units not conserved per DC × SKU (on hand + in transit ≠ receipts − issues)")
        inventory_value = self.layers.value()
        if abs(inventory_value - ledger.balance[Account.INVENTORY]) > MONEY_TOLERANCE * scale:
            problems.append(
                f"inventory account {ledger.balance[Account.INVENTORY]:.6f} ≠ cost layers {inventory_value:.6f}"
            )
        transit_value = float(self.transit_value.sum() + self.delivery_cost.sum())
        if abs(transit_value - ledger.balance[Account.INVENTORY_IN_TRANSIT]) > MONEY_TOLERANCE * scale:
            problems.append("in-transit inventory account differs from the shipments in transit")
        payables = sum(self.payables.values())
        if abs(payables + ledger.balance[Account.PAYABLES]) > MONEY_TOLERANCE * scale:
            problems.append("payables account differs from the open supplier invoices")
        if self._cash_rule and self._headroom_after_purchases < -MONEY_TOLERANCE * scale:
            problems.append(
                f"a purchase took cash {-self._headroom_after_purchases:.2f} below the treasury buffer"
            )
        if problems:
            raise InvariantError(f"period {self.period}: " + "; ".join(problems))
        return True


def run_episode(simulator: Simulator, policy, seed: int | None = None) -> list[PeriodReport]:
    """Reset ``simulator`` with ``seed`` and let ``policy`` decide every period."""
    simulator.reset(seed=seed)
    policy.reset(simulator.network, seed=seed)
    reports = []
    while not simulator.done:
        reports.append(simulator.step(policy.act(simulator)))
    return reports
