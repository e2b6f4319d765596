"""The SimPy discrete-event simulator of a supply chain with accounting-grade books.

Time is measured in periods. Each period runs through the same business processes,
one generator per actor, in a fixed order of phases inside the period::

    t + 0.0  decision point   the policy's requests pass the feasibility layer; transfers leave
    t + 0.1  suppliers         released purchase orders are shipped (partial deliveries, lead times)
    t + 0.2  receiving         shipments due this period are put away into cost layers
    t + 0.3  customers         demand arrives and is served tier by tier; shortfalls backlogged or lost;
                               goods reaching customers this period are delivered and invoiced
    t + 0.9  finance           payables and receivables that fall due are settled; the period is
                               closed: holding cost, interest, expiry, lower of cost and NRV, KPIs,
                               invariants

Quantities are numpy arrays over SKUs owned by the simulator (one event moves a whole
vector). SimPy sequences the periods: one process, the calendar, lets the actors take their
turns in phase order and then waits one period, so each period costs one SimPy event
rather than one per actor. Each actor's business step is one compiled call
(:mod:`invalloc.sim.kernels`); when nothing has to be written between them (no audit log) and
no subclass replaces an actor, the calendar makes the five calls as one
(:meth:`Simulator._whole_period`), in the same order, and records each actor's figures as its
turn would. Shapes follow :mod:`invalloc.sim.network`.

Use :meth:`Simulator.reset` then :meth:`Simulator.step` per period (the Gymnasium
environment does), or :func:`run_episode` with a policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import simpy

from invalloc.config.checks import MAX_EPISODE_VALUES, episode_values
from invalloc.config.schema import MAX_PERIODS
from invalloc.sim import kernels
from invalloc.sim.accounts import EXPENSE_ACCOUNTS, INCOME_ACCOUNTS
from invalloc.sim.audit import AuditLog
from invalloc.sim.books import NEVER, Account, CostLayers, Ledger
from invalloc.sim.compiled_calls import BoundKernel
from invalloc.sim.demand import DemandModel, EpisodeDemands, load_demand_trace, split_over_tiers
from invalloc.sim.feasibility import FeasibilityContext, FeasibilityLayer, FeasibleDecision
from invalloc.sim.kernels.dues import PAYABLES_BOOK, RECEIVABLES_BOOK
from invalloc.sim.kernels.lead_times import draw_lead_times, lead_time_tables
from invalloc.sim.network import Network

CASH, INVENTORY = int(Account.CASH), int(Account.INVENTORY)
REVENUE, COST_OF_GOODS_SOLD = int(Account.REVENUE), int(Account.COST_OF_GOODS_SOLD)
INTEREST = int(Account.INTEREST)
# The profit-and-loss accounts are the contiguous block REVENUE … INTEREST of the chart.
assert sorted(int(a) for a in INCOME_ACCOUNTS + EXPENSE_ACCOUNTS) == list(range(REVENUE, INTEREST + 1))

#: Money tolerance of the trial balance and of the cash rule check (currency units).
MONEY_TOLERANCE = 1e-6
#: Unit tolerance of the conservation checks: absolute (units) plus relative to the flows.
UNIT_TOLERANCE = 1e-6
#: Cost-layer slots per DC × SKU at the start of an episode (doubled when an episode needs more).
LAYER_SLOTS = 8
RELATIVE_TOLERANCE = 1e-9


class InvariantError(AssertionError):
    """The books or the unit flows broke an invariant: always a simulator bug."""


@dataclass(slots=True)
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

    into: np.ndarray  # opening stock + everything sent to the DC
    out_of: np.ndarray  # everything that left the DC (transfers, sales, expiry)


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
        if periods is not None and (
            isinstance(periods, bool) or not isinstance(periods, int | np.integer) or not 1 <= periods <= MAX_PERIODS
        ):
            raise ValueError(f"periods={periods!r}: must be a whole number of periods from 1 to {MAX_PERIODS:,}")
        self.periods = int(periods) if periods is not None else scenario.episode.horizon
        values = episode_values(
            self.periods, network.n_skus, len(network.tiers), len(scenario.lanes), len(network.locations)
        )
        if values > MAX_EPISODE_VALUES:
            raise ValueError(
                f"periods={self.periods}: {values:,} values per episode (periods × SKUs × (tiers + lanes + "
                f"locations)) exceed the {MAX_EPISODE_VALUES:,} an episode may hold"
            )
        self.check_invariants = check_invariants
        self.audit_enabled = audit
        # Input first: a bad trace is one error line before any kernel compiles (the first run's
        # compile notice would otherwise precede it).
        trace = demand_trace
        if trace is None and scenario.demand.trace is not None:
            trace = network.loaded.base_dir / scenario.demand.trace
        self._trace = load_demand_trace(network, trace, self.periods) if trace is not None else None
        self.feasibility = FeasibilityLayer(network)
        self.demand_model = DemandModel(network, self.periods)
        channel_mean = self.demand_model.expected  # (H + 1, C, S)
        if self._trace is not None and not scenario.demand.streams:
            # A trace without a model: planners forecast its average.
            channel_mean = np.broadcast_to(self._trace.mean(axis=0), channel_mean.shape)
        self._tier_forecast = channel_mean[:, network.tier_channel] * network.tier_share[None, :, None]
        self._tier_forecast.flags.writeable = False  # handed to policies as views
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
        self._purchase_budget = np.inf if self._budget is None else self._budget
        self._outcome_shape = (3, len(network.tiers), network.n_skus)  # served, served new, short
        self._figures = np.empty(kernels.N_FIGURES)  # a period's figures from kernels.run_period
        self._contract_first = scenario.rules.serve_contract_minimums_first and bool(
            (network.tier_min_fill_rate > 0).any()
        )
        self._nrv_active = finance.lower_of_cost_and_nrv and bool(np.isfinite(network.net_realisable_value).any())
        self._perishable = bool((network.shelf_life > 0).any())
        self._payment_window = max((int(s.maximum) for s in network.purchase_lead_time), default=0)
        self._ring = network.max_lead_time + 1
        approval = scenario.rules.purchase_approval
        self._approval_delays = approval is not None and approval.action == "delay"
        self._unreliable_lanes = np.flatnonzero(network.purchase_reliability < 1)
        self._unreliable_ratio = network.purchase_reliability[self._unreliable_lanes][:, None]
        self._unreliable_reliability = np.ascontiguousarray(self._unreliable_ratio[:, 0])
        # The compiled binomial draws' inversion tables of those reliabilities (fixed per network).
        self._reliability_tables = kernels.binomial_inversion_tables(self._unreliable_reliability)
        draws = len(self._unreliable_lanes) * network.n_skus  # at most one per unreliable lane × SKU
        self._partial_scratch = (
            np.empty((len(network.purchase_location), network.n_skus)),
            np.empty(draws, dtype=np.int64),
            np.empty(draws),
            np.empty(draws, dtype=np.int64),
        )
        self._sales_leads = self._fixed_leads(network.sales_lead_time)
        self._sales_share = network.channel_max_share[network.sales_channel]
        self._purchase_leads = self._fixed_leads(network.purchase_lead_time)
        self._transfer_leads = self._fixed_leads(network.transfer_lead_time)
        # Per list of lead-time samplers (keyed by the list's id): what :meth:`_draw_leads` reads
        # (the fixed lanes' lead times, the random lanes and their inverse CDFs) and the array
        # it draws into (read by the phase that drew it, within the period).
        self._lead_plans = {
            id(samplers): (lead_time_tables(samplers), np.empty(len(samplers), dtype=np.int64))
            for samplers in (network.purchase_lead_time, network.sales_lead_time, network.transfer_lead_time)
        }
        order = np.argsort(network.sales_channel, kind="stable")
        self._lane_index = order.astype(np.int64)  # sales lanes grouped by channel, in lane order
        self._lane_start = np.searchsorted(network.sales_channel[order], np.arange(len(network.channels) + 1))
        self._backorder_replenishment = scenario.episode.backorder_replenishment
        shape = network.opening_stock.shape
        # Writable copies: with one DC ``ascontiguousarray`` of a broadcast returns the read-only
        # view itself, and a read-only array compiles a second signature of the reset kernels.
        self._opening_unit_cost = np.array(np.broadcast_to(network.standard_cost, shape), order="C")
        self._opening_expiry = np.array(
            np.broadcast_to(np.where(network.shelf_life > 0, network.shelf_life, NEVER), shape), order="C"
        )
        self._opening_value = float((network.opening_stock * network.standard_cost).sum())
        self._discount_factor = (self._discount ** np.arange(self.periods + 1)).tolist()
        # The network's constants for the episode arrays (:meth:`_pack_episode`), in field order.
        network_arrays = dict(
            purchase_unit_cost=network.purchase_unit_cost,
            purchase_shipping_cost=network.purchase_shipping_cost,
            purchase_fixed_cost=network.purchase_fixed_cost,
            purchase_location=network.purchase_location,
            shelf_life=network.shelf_life,
            transfer_source=network.transfer_source,
            transfer_destination=network.transfer_destination,
            transfer_shipping_cost=network.transfer_shipping_cost,
            lost_sales=self._lost_sales,
            contract_first=self._contract_first,
            tier_min_fill_rate=network.tier_min_fill_rate,
            tier_penalty=network.tier_penalty,
            sku_integer=network.integer_units,
            sales_has_decision=network.sales_has_decision,
            sales_share=self._sales_share,
            sales_capacity=network.sales_capacity,
            reserve_quantity=network.reserve_quantity,
            reserve_tiers=network.reserve_tiers,
            tier_order=network.tier_order,
            tier_channel=network.tier_channel,
            lane_start=self._lane_start,
            lane_index=self._lane_index,
            sales_location=network.sales_location,
            tier_price=self._tier_price,
            sales_shipping_cost=network.sales_shipping_cost,
            holding_cost=network.holding_cost,
            interest_per_period=self._interest_per_period,
            perishable=self._perishable,
            nrv_active=self._nrv_active,
            net_realisable_value=network.net_realisable_value,
            weighted_average=finance.cost_method == "weighted_average",
        )
        self._network_arrays = kernels.packable(kernels.NETWORK_FIELDS, network_arrays)
        self._has_transfers = len(network.transfer_source) > 0
        self._weighted_average = finance.cost_method == "weighted_average"
        self._opening_cash = finance.opening_cash
        self._no_open = np.zeros(0)  # no request open (the decision point adds +0.0)
        self._no_leads = np.zeros(0, dtype=np.int64)
        # Whether the suppliers draw from the supply stream (random lead times, unreliable lanes);
        # if not, their compiled step gets a state it never reads, and the stream is not made.
        self._supply_draws = bool(self._unreliable_lanes.size) or self._purchase_leads is None
        self._no_draws = np.zeros(4, dtype=np.uint64)
        # Whether no subclass replaces an actor (see _one_call_periods).
        self._own_actors = all(getattr(type(self), name) is getattr(Simulator, name) for name in _ACTORS)
        # The kernels called every period, straight at their compiled code (unbound at each reset).
        self._run_period = BoundKernel(kernels, "run_period")
        self._money_outlook = BoundKernel(kernels, "money_outlook")
        self._bills_and_headroom = BoundKernel(kernels, "bills_and_headroom")
        self._allocate_state()
        #: Each episode's demand by seed (drawn ahead, kept for seeds that come back).
        self.demands = EpisodeDemands(
            self._draw_demand, lambda: self._trace is None and self.demand_model.draws_compiled
        )
        self.reset(seed=0)

    # ------------------------------------------------------------------ episode set-up
    def _allocate_state(self) -> None:
        """Allocate the episode's state arrays and pack them for the kernels, once per simulator.

        :meth:`reset` empties them in place (a compiled call) rather than reallocating them:
        the arrays keep their identity across episodes, only the cost layers are replaced when
        an episode made them grow.
        """
        n = self.network
        n_loc, n_sku, n_tier, ring = len(n.locations), n.n_skus, len(n.tiers), self._ring
        self.ledger = Ledger()
        self.layers = CostLayers(n_loc, n_sku, self._weighted_average, slots=LAYER_SLOTS)
        self.on_hand = np.zeros((n_loc, n_sku))
        self.backlog = np.zeros((n_tier, n_sku))
        # Goods in transit, by arrival period modulo the ring length (R, D, S): one layer of
        # the ring collects everything that arrives at a DC in the same period.
        self.transit_units = np.zeros((ring, n_loc, n_sku))
        self.transit_value = np.zeros((ring, n_loc, n_sku))
        self.transit_expires = np.full((ring, n_loc, n_sku), NEVER, dtype=np.int64)
        self.inbound = np.zeros((n_loc, n_sku))  # units in transit to each DC
        # Goods on the way to customers, by delivery period: units and cost per source DC,
        # revenue per sales lane (A,).
        self.delivery_units = np.zeros((ring, n_loc, n_sku))
        self.delivery_cost = np.zeros((ring, n_loc, n_sku))
        self.delivery_revenue = np.zeros((ring, len(n.sales_location)))
        self.flows = _Flows(into=np.zeros((n_loc, n_sku)), out_of=np.zeros((n_loc, n_sku)))
        self._no_release = np.zeros((len(n.purchase_location), n_sku))
        self._transfer_value = np.zeros((len(n.transfer_source), n_sku))
        self._invoices = np.zeros(len(n.purchase_location))
        self._shipped = np.zeros((len(n.sales_location), n_tier, n_sku))
        self._revenue_by_lane = np.zeros(len(n.sales_location))
        # The books of money falling due (kernels.dues): an entry is booked for its own period
        # or later and leaves at its period, so the longest payment term + 2 entries suffice.
        purchase_terms = n.purchase_payment_periods.astype(np.int64)
        lane_terms = n.channel_payment_periods[n.sales_channel].astype(np.int64)
        self._purchase_terms, self._lane_terms = purchase_terms, lane_terms
        self._payable_due = np.zeros(int(purchase_terms.max(initial=0)) + 2, dtype=np.int64)
        self._payable_amount = np.zeros(self._payable_due.shape[0])
        self._receivable_due = np.zeros(int(lane_terms.max(initial=0)) + 2, dtype=np.int64)
        self._receivable_amount = np.zeros(self._receivable_due.shape[0])
        self._due_count = np.zeros(2, dtype=np.int64)
        # Purchase orders held for approval, by release period modulo the delay + 1: every order
        # is held for exactly the delay, so each slot is free again when its turn comes.
        approval = n.scenario.rules.purchase_approval
        slots = approval.delay_periods + 1 if self._approval_delays else 1
        n_purchase = len(n.purchase_location)
        self._held_orders = np.zeros((slots, n_purchase, n_sku))
        self._held_value = np.zeros(slots)
        self._held_release = np.full(slots, -1, dtype=np.int64)
        self._released_orders = np.zeros((n_purchase, n_sku))
        # The SKUs whose layers can expire, and those lower of cost and NRV can write down.
        self._perishable_skus = np.flatnonzero(n.shelf_life > 0).astype(np.int64)
        self._nrv_skus = np.flatnonzero(n.net_realisable_value != np.inf).astype(np.int64)
        # (A, T) whether sales lane a serves tier t's channel: the only tiers it can ship to.
        self._lane_tiers = n.sales_channel[:, None] == n.tier_channel[None, :]
        self._pack_episode()

    def reset(self, seed: int | None = None) -> None:
        """Start a new episode; the same seed gives the same episode bit for bit.

        Random streams are independent: demand is drawn at reset from its own stream, so it
        does not depend on the policy (common random numbers); supplier lead times and
        partial deliveries use a second stream.
        """
        n = self.network
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**63)
        self._seed = seed
        # Supply's own stream (lead times, partial deliveries; created when first drawn from).
        self._supply_rng: np.random.Generator | None = None
        self.tier_demand = self.demands.get(seed)  # (H, T, S), read-only (see _draw_demand)

        self.period = 0
        if self.layers.quantity.shape[2] != LAYER_SLOTS:  # the last episode made the layers grow
            self.layers = CostLayers(len(n.locations), n.n_skus, self._weighted_average, slots=LAYER_SLOTS)
            self._pack_episode()
        # Empty every state array in place, then book the opening stock and cash (as
        # Ledger.post and CostLayers.receive would).
        while not kernels.reset_episode(
            self._episode_arrays,
            n.opening_stock,
            self._opening_unit_cost,
            self._opening_expiry,
            self._opening_value,
            self._opening_cash,
        ):
            self.layers.grow()
            self._pack_episode()
        self._held_release[:] = -1  # no order held for approval
        self._due_count[:] = 0  # no bill or customer payment open (kernels.dues)
        self.audit_log = AuditLog() if self.audit_enabled else None
        self.min_cash = self.ledger.balance.item(CASH)
        # (period, cash, (bills due in the payment window, purchase headroom)): see bills_and_headroom.
        self._headroom_memo: tuple[int, float, tuple[float, float]] | None = None
        self._requests: np.ndarray | None = None
        self.open_requests = np.zeros(n.n_decisions)  # backordered replenishment, units
        self._shortfall_penalty = 0.0
        self._report: PeriodReport | None = None
        for kernel in (self._run_period, self._money_outlook, self._bills_and_headroom):
            kernel.unbind()
        # SimPy sequences the periods: one process, one event per period (see _calendar).
        self.env = simpy.Environment()
        self.env.process(self._calendar())

    def _draw_demand(self, seed: int) -> np.ndarray:
        """Episode ``seed``'s tier demand (H, T, S), from its own stream: the first of two
        independent streams derived from the seed (the second is :attr:`supply_rng`). A pure
        function of the seed, which may run on :attr:`demands`' background thread."""
        demand_rng = np.random.default_rng([seed, 0])
        if self._trace is not None:
            return split_over_tiers(self.network, self._trace, demand_rng)
        return self.demand_model.sample(demand_rng)

    def draw_ahead(self, seed: int) -> None:
        """Start drawing the demand of a coming episode ``seed`` on a background thread, so that
        its :meth:`reset` need not (:class:`~invalloc.sim.demand.EpisodeDemands`)."""
        self.demands.draw_ahead(seed)

    @property
    def supply_rng(self) -> np.random.Generator:
        """The supply stream (lead times, partial deliveries), derived from the episode's seed."""
        if self._supply_rng is None:
            self._supply_rng = np.random.default_rng([self._seed, 1])
        return self._supply_rng

    def _pack_episode(self) -> None:
        """Pack the episode's state arrays for the kernels (once, and when the layers are replaced)."""
        layers, ledger = self.layers, self.ledger
        purchase_plan, purchase_leads = self._lead_plans[id(self.network.purchase_lead_time)]
        # In EPISODE_FIELDS order; every state array is allocated C-contiguous, so shared as is.
        self._episode_arrays = kernels.pack_episode(
            (
                *self._network_arrays,
                self.on_hand,
                self.inbound,
                self.backlog,
                self.transit_units,
                self.transit_value,
                self.transit_expires,
                self.delivery_units,
                self.delivery_cost,
                self.delivery_revenue,
                self.flows.into,
                self.flows.out_of,
                ledger.balance,
                ledger.period_start,
                layers.quantity,
                layers.unit_cost,
                layers.expires,
                layers.used,
                layers._scratch,
                self._invoices,
                self._transfer_value,
                self._shipped,
                self._revenue_by_lane,
                self._perishable_skus,
                self._nrv_skus,
                self._lane_tiers,
                self._unreliable_lanes,
                self._unreliable_reliability,
                *self._reliability_tables,
                *self._partial_scratch,
                *purchase_plan,
                purchase_leads,
                self._payable_due,
                self._payable_amount,
                self._receivable_due,
                self._receivable_amount,
                self._due_count,
                self._purchase_terms,
                self._lane_terms,
                self._held_orders,
                self._held_value,
                self._held_release,
                self._no_release,
                self._released_orders,
                self.feasibility._rules,
            )
        )

    # ------------------------------------------------------------------ public stepping
    @property
    def done(self) -> bool:
        return self.period >= self.periods

    def step(self, requests: np.ndarray) -> PeriodReport:
        """Run one period with the policy's requested decisions (n_decisions,) in units."""
        if self.done:
            raise RuntimeError("the episode is over; call reset()")
        self._requests = requests
        # Process this period's event (stepping directly is cheaper than run(until=…)).
        env, end = self.env, self.period + 1
        while env.peek() < end:
            env.step()
        report = self._report
        self.period += 1
        assert report is not None
        return report

    @property
    def last_report(self) -> PeriodReport | None:
        """The report of the last finished period (None right after reset)."""
        return self._report if self.period > 0 else None

    # ------------------------------------------------------------------ state for policies
    def context(self) -> FeasibilityContext:
        """The state the feasibility layer sees at this period's decision point."""
        return FeasibilityContext(
            on_hand=self.on_hand,
            inbound=self.inbound,
            purchase_headroom=self.purchase_headroom() if self._cash_rule else np.inf,
            purchase_budget=self._purchase_budget,
            released_orders=self._released_now(),
        )

    def arriving(self, period: int) -> np.ndarray:
        """Units arriving at each DC in ``period`` (D, S), for ``period`` within the longest lead time."""
        return self.transit_units[period % self._ring].copy()

    def pipeline(self, horizon: int) -> np.ndarray:
        """Units in transit to each DC by arrival period t … t+horizon−1, shape (horizon, D, S)."""
        slots = (self.period + np.arange(horizon)) % self._ring
        out = self.transit_units[slots]
        if horizon > self._ring:
            out[self._ring :] = 0.0  # nothing is in transit for longer than the longest lead time
        return out

    @property
    def cash(self) -> float:
        return self.ledger.balance.item(CASH)

    @property
    def payment_window(self) -> int:
        """Periods ahead whose bills the cash rule holds back: the longest purchase lead time."""
        return self._payment_window

    @property
    def cash_rule_active(self) -> bool:
        return bool(self._cash_rule)

    @property
    def payables(self) -> dict[int, float]:
        """Supplier bills not yet paid: due period → money, in the order they were first booked
        (a copy; the books are :mod:`invalloc.sim.kernels.dues`)."""
        return _book(self._payable_due, self._payable_amount, self._due_count[PAYABLES_BOOK])

    @property
    def receivables(self) -> dict[int, float]:
        """Customer payments not yet received: due period → money, as :attr:`payables`."""
        return _book(self._receivable_due, self._receivable_amount, self._due_count[RECEIVABLES_BOOK])

    def receivables_due_within(self, periods: int) -> float:
        """Customer payments (money) falling due in the next ``periods`` periods."""
        return kernels.due_before(
            self._receivable_due, self._receivable_amount, self._due_count, RECEIVABLES_BOOK, self.period + periods
        )

    def payables_due_within(self, periods: int) -> float:
        """Supplier bills (money) falling due in the next ``periods`` periods."""
        return kernels.due_before(
            self._payable_due, self._payable_amount, self._due_count, PAYABLES_BOOK, self.period + periods
        )

    def purchase_headroom(self) -> float:
        """Money a purchase may commit now under the cash rule (may be negative).

        Remembered for the period and cash it was computed at: a policy reads it just before
        the decision point reads it again, with nothing changed in between. (Bills and held
        orders change only inside a period, after the decision point.)
        """
        return self.bills_and_headroom()[1]

    def bills_and_headroom(self) -> tuple[float, float]:
        """(supplier bills due within the payment window, i.e. ``payables_due_within(payment_window
        + 1)``, and :meth:`purchase_headroom`), remembered as :meth:`purchase_headroom` is: the
        environment's observation reads both after a period, the next decision point the headroom."""
        cash = self.ledger.balance.item(CASH)
        memo = self._headroom_memo
        if memo is not None and memo[0] == self.period and memo[1] == cash:
            return memo[2]
        # Cash + credit line − the bills − the orders held for approval (summed in release
        # order, as they were held) − the buffer, in one compiled call.
        outlook = self._bills_and_headroom(
            self._episode_arrays, self.period, self._payment_window + 1, self._credit_line, self._buffer
        )
        self._headroom_memo = (self.period, cash, outlook)
        return outlook

    def money_outlook(self, periods: int) -> tuple[float, float, float, float]:
        """(Cash, :meth:`bills_and_headroom`'s bills and headroom, :meth:`receivables_due_within`
        ``periods``) in one compiled call; the headroom remembered as :meth:`purchase_headroom` is."""
        cash, bills, headroom, receivables = self._money_outlook(
            self._episode_arrays, self.period, self._payment_window + 1, self._credit_line, self._buffer, periods
        )
        self._headroom_memo = (self.period, cash, (bills, headroom))
        return cash, bills, headroom, receivables

    @property
    def pending_approval(self) -> dict[int, np.ndarray]:
        """Purchase orders held for approval: release period → (P, S) units, in release order
        (read-only views of the ring the kernels keep, valid until the release)."""
        releases = self._held_release.tolist()
        if max(releases) < 0:
            return {}
        held = {}
        for release in sorted(release for release in releases if release >= 0):
            orders = self._held_orders[release % len(releases)].view()
            orders.flags.writeable = False
            held[release] = orders
        return held

    @property
    def _pending_value(self) -> dict[int, float]:
        """The value of :attr:`pending_approval`'s orders (money), by release period in release order."""
        releases, slots = self._held_release, self._held_release.shape[0]
        return {
            int(release): float(self._held_value[release % slots])
            for release in sorted(releases.tolist())
            if release >= 0
        }

    def _released_now(self) -> np.ndarray:
        """The orders released from approval this period (P, S), or zeros."""
        releases = self._held_release
        slot = self.period % releases.shape[0]
        return self._held_orders[slot] if releases[slot] == self.period else self._no_release

    def demand_forecast(self, periods_ahead: int = 0) -> np.ndarray:
        """Expected new demand per tier and SKU in period t + ``periods_ahead`` (T, S).

        From the scenario's demand model (its means, trend and seasonality), which a
        planner knows; never from the realised demand.
        """
        return self._tier_forecast[min(self.period + periods_ahead, self.periods)]

    # ------------------------------------------------------------------ processes
    def _calendar(self):
        """The period calendar, the one SimPy process: every period the business actors take
        their turn in phase order, then the clock moves on to the next period.

        Each actor is a generator that does one period's work and yields; the phases are an
        order within the period, so one SimPy event per period sequences them all.
        """
        if self._one_call_periods():
            actors = (self._whole_period(),)
        else:
            actors = (
                self._decision_point(),  # t + 0.0
                self._suppliers(),  # t + 0.1
                self._receiving(),  # t + 0.2
                self._customers(),  # t + 0.3
                self._finance(),  # t + 0.9
            )
        turns = [actor.__next__ for actor in actors]
        while True:
            for take_turn in turns:
                take_turn()
            yield self.env.timeout(1)

    def _one_call_periods(self) -> bool:
        """Whether the actors' business steps can run in one compiled call a period
        (:meth:`_whole_period`): nothing to write between them (no audit log), no actor
        replaced by a subclass, lead times of transfers and sales fixed (those of purchases are
        drawn in the call) and the supply stream drawn compiled."""
        own = self._own_actors
        fixed = (self._transfer_leads is not None or not self._has_transfers) and self._sales_leads is not None
        return self.audit_log is None and own and fixed and self._supply_state() is not None

    def _supply_state(self) -> np.ndarray | None:
        """The supply stream's PCG64 state words for the compiled draws (a dummy the kernels never
        read when the suppliers draw nothing), or None when numpy must draw."""
        return kernels.state_words(self.supply_rng) if self._supply_draws else self._no_draws

    def _whole_period(self):
        """Once a period, the five actors' business steps in their order, in one compiled call
        (:func:`~invalloc.sim.kernels.run_period`), each actor's figures then recorded as its
        own turn records them: the decision, the suppliers' shipments, the customers served,
        the close and the report."""
        feasibility, figures, run_period = self.feasibility, self._figures, self._run_period
        budget, state = self._purchase_budget, self._supply_state()
        transfer_leads = self._transfer_leads if self._has_transfers else self._no_leads
        while True:
            flat = feasibility.checked_request(self._requests)
            headroom = self.purchase_headroom() if self._cash_rule else np.inf
            outputs = feasibility.new_outputs()
            outcome = self._new_outcome()
            new_demand = self.tier_demand[self.period]
            received = run_period(
                self._episode_arrays,
                state,
                flat,
                self.open_requests if self._backorder_replenishment else self._no_open,
                budget,
                headroom,
                transfer_leads,
                self._sales_leads,
                self.period,
                outputs,
                new_demand,
                outcome,
                figures,
            )
            value, penalty, freight, goods, ordering, purchase_freight, *served = figures.tolist()
            decision = self._decided(outputs, value, penalty, freight, headroom)
            self._supplied(goods, ordering, purchase_freight)
            if received:
                self._served_customers(new_demand, outcome, *served[:3])
                self._closed(*served[3:])
            else:  # the cost layers had no room for the arrivals: grown, then the rest of the period
                self._put_away(self.period % self._ring)
                self._serve(decision, new_demand, outcome, self._sales_leads)
                self._closed(*self._close_books())
            yield

    def _decision_point(self):
        """Once a period: the policy's requests become an executable decision; transfers leave."""
        n = self.network
        feasibility = self.feasibility
        backorders = self._backorder_replenishment
        budget = self._purchase_budget
        while True:
            flat = feasibility.checked_request(self._requests)
            headroom = self.purchase_headroom() if self._cash_rule else np.inf
            leads = self._no_leads
            if self._has_transfers:
                leads = (
                    self._transfer_leads if self._transfer_leads is not None else self._draw_leads(n.transfer_lead_time)
                )
            outputs = feasibility.new_outputs()
            # Opens the period's books, projects the request on the stock now (with the orders
            # released from approval), sends the transfers, holds the orders approval delays.
            value, penalty, _, freight = kernels.decision_point(
                self._episode_arrays,
                flat,
                self.open_requests if backorders else self._no_open,
                budget,
                headroom,
                leads,
                self.period,
                *outputs,
            )
            decision = self._decided(outputs, value, penalty, freight, headroom)
            if self.audit_log is not None:
                if self._has_transfers:
                    self._audit_transfers(decision.transfers)
                self.audit_log.interventions(self.period, decision)
            yield

    def _decided(
        self, outputs: tuple[np.ndarray, ...], value: float, penalty: float, freight: float, headroom: float
    ) -> FeasibleDecision:
        """The period's decision (the projection's filled ``outputs``), its purchase value,
        shortfall penalty and transfer freight recorded; the purchase headroom it saw."""
        decision = self.feasibility.decision(outputs, value, penalty)
        self._decision = decision
        self._shortfall_penalty = penalty
        if self._backorder_replenishment:
            self.open_requests = decision.shortfall
        self._period_purchases = 0.0
        self._period_freight = freight
        if self._cash_rule and value > 0:
            # The invariant: what the rule allowed, recorded before any money moves. Headroom
            # may already be negative (bills falling due); then no purchase may be made.
            self._headroom_after_purchases = headroom - value
        else:
            self._headroom_after_purchases = 0.0
        return decision

    def _audit_transfers(self, transfers: np.ndarray) -> None:
        """Transfers left their source DC at FIFO cost (value in ``_transfer_value``) for the destination DC."""
        n = self.network
        value = self._transfer_value  # written by the decision-point kernel
        for x in np.flatnonzero(transfers.sum(axis=1)):
            self.audit_log.movements(
                self.period,
                "transfer",
                n.locations[n.transfer_source[x]],
                n.locations[n.transfer_destination[x]],
                n.skus,
                transfers[x],
                value[x],
            )

    @staticmethod
    def _fixed_leads(samplers) -> np.ndarray | None:
        """Lead times per lane (lanes,) when all are fixed, else None (drawn per shipment)."""
        if all(sampler.is_fixed for sampler in samplers):
            return np.array([int(sampler.values[0]) for sampler in samplers], dtype=np.int64)
        return None

    def _draw_leads(self, samplers) -> np.ndarray:
        """Lead time per lane (lanes,) in periods; random ones drawn from the supply stream.

        One uniform per random lane, in lane order, on its inverse CDF (as ``sampler.draw``
        takes them): one compiled call when the supply stream is numpy's PCG64 (the same
        numbers), else numpy draws them (a scalar draw is the next entry of an array draw).
        """
        plan, leads = self._lead_plans[id(samplers)]
        rng = self.supply_rng
        state = kernels.state_words(rng)
        if state is not None:
            draw_lead_times(state, *plan, leads)
            return leads
        fixed, random_lanes = plan[0], plan[1].tolist()
        leads = fixed.copy()
        random = rng.random
        for lane in random_lanes:
            leads[lane] = samplers[lane].value_at(random())
        return leads

    def _suppliers(self):
        """Suppliers ship the purchase orders released to them, possibly short, with lead times."""
        while True:
            self._fulfil_orders(self._decision.orders)
            yield

    def _fulfil_orders(self, orders: np.ndarray) -> None:
        """The orders released from approval join the period's ``orders``; each supplier ships
        what it can of each order (binomial per unit when unreliable)."""
        n = self.network
        state = self._supply_state()
        if state is not None:
            # One compiled call: the released orders added, the unreliable lanes' shipments and
            # the lead times drawn, the goods sent.
            goods, ordering, freight, released, partial = kernels.supply_orders(
                self._episode_arrays, state, orders, self.period
            )
            if released:
                orders = self._released_orders
            shipped = self._partial_scratch[0] if partial else orders
        else:  # the supply stream is not PCG64 laid out as expected: numpy draws
            if kernels.release_orders(self._episode_arrays, orders, self.period):
                orders = self._released_orders
            shipped = orders
            if self._unreliable_lanes.size and kernels.any_nonzero_rows(orders, self._unreliable_lanes):
                shipped = self._partial_delivery(orders)
            leads = self._purchase_leads if self._purchase_leads is not None else self._draw_leads(n.purchase_lead_time)
            goods, ordering, freight = kernels.ship_orders(self._episode_arrays, orders, shipped, leads, self.period)
        self._supplied(goods, ordering, freight)
        if self.audit_log is not None:
            for p in np.flatnonzero(orders.sum(axis=1) > 0):
                supplier = n.suppliers[n.purchase_supplier[p]]
                location = n.locations[n.purchase_location[p]]
                self.audit_log.movements(
                    self.period, "order", supplier, location, n.skus, orders[p], orders[p] * n.purchase_unit_cost[p]
                )
                self.audit_log.movements(
                    self.period,
                    "supplier_shipment",
                    supplier,
                    location,
                    n.skus,
                    shipped[p],
                    shipped[p] * (n.purchase_unit_cost[p] + n.purchase_shipping_cost[p]),
                )

    def _supplied(self, goods: float, ordering: float, freight: float) -> None:
        """The suppliers' shipments' cost recorded: goods and fixed ordering cost, freight."""
        self._period_purchases += goods + ordering
        self._period_freight += freight

    def _partial_delivery(self, orders: np.ndarray) -> np.ndarray:
        """Units shipped of the purchase orders (P, S), the unreliable lanes' drawn.

        Each whole unit arrives with probability ``reliability``; fractional SKUs, and orders
        beyond 2**53 units (no exact integer draw exists), get the expected share. The draws
        are one binomial call over the unreliable lanes in turn (the same numbers as one call
        per lane), compiled when the supply stream is numpy's PCG64 (the same numbers).
        Returns a scratch array, valid until the next period.
        """
        shipped, units, probabilities, cells = self._partial_scratch
        count = kernels.partial_shipments(
            orders,
            self._unreliable_lanes,
            self._unreliable_reliability,
            self.network.integer_units,
            shipped,
            units,
            probabilities,
            cells,
        )
        if count:
            rng = self.supply_rng
            state = kernels.state_words(rng)
            if state is not None:
                lanes, tables = self._unreliable_lanes, self._reliability_tables
                kernels.draw_shipped_units(state, shipped, units, probabilities, cells, count, lanes, *tables)
            else:
                shipped.ravel()[cells[:count]] = rng.binomial(units[:count], probabilities[:count])
        return shipped

    def _receiving(self):
        """DCs put away everything that arrives this period, one cost layer per DC × SKU."""
        while True:
            slot = self.period % self._ring
            if self.audit_log is not None:
                self._audit_receipts(slot)
            self._put_away(slot)
            yield

    def _put_away(self, slot: int) -> None:
        """Ring slot ``slot``'s arrivals put away, the layers grown until they have room."""
        while kernels.put_away(self._episode_arrays, slot) < 0.0:
            self.layers.grow()  # nothing was put away: retry with twice the layer slots
            self._pack_episode()

    def _audit_receipts(self, slot: int) -> None:
        """The goods arriving this period (ring slot ``slot``) reached their DCs."""
        n = self.network
        units = self.transit_units[slot]
        if not units.any():
            return
        for d in np.flatnonzero(units.sum(axis=1)):
            self.audit_log.movements(
                self.period, "receipt", "in_transit", n.locations[d], n.skus, units[d], self.transit_value[slot, d]
            )

    def _customers(self):
        """Customers' demand arrives; tiers are served in priority order, contract minimums first.

        Unserved units are backlogged or lost, and each unit short costs its tier's penalty.
        Shipped goods are issued at FIFO cost; those that reach customers this period are
        delivered and invoiced (receivables fall due after the channel's payment terms).
        """
        n = self.network
        while True:
            decision = self._decision
            new_demand = self.tier_demand[self.period]
            outcome = self._new_outcome()
            leads = self._sales_leads if self._sales_leads is not None else self._draw_leads(n.sales_lead_time)
            self._serve(decision, new_demand, outcome, leads)
            if self.audit_log is not None:
                self._audit_sales(self._shipped)  # scratch (A, T, S), zeroed by the kernel
            yield

    def _serve(
        self,
        decision: FeasibleDecision,
        new_demand: np.ndarray,
        outcome: tuple[np.ndarray, np.ndarray, np.ndarray],
        leads: np.ndarray,
    ) -> None:
        """The customers' compiled step (:func:`~invalloc.sim.kernels.serve_period`), recorded."""
        penalty, sales_value, freight, _ = kernels.serve_period(
            self._episode_arrays,
            new_demand,
            decision.allocations,
            leads,
            self.period,
            decision.log,
            *outcome,
            decision.executed,  # the allocations as capped are recorded in it
        )
        self._served_customers(new_demand, outcome, penalty, sales_value, freight)

    def _close_books(self) -> tuple[float, ...]:
        """The bills and payments due settled and the period closed (:func:`~invalloc.sim.kernels.close_books`)."""
        return kernels.close_books(self._episode_arrays, self._penalty, self.period)

    def _new_outcome(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """New arrays for the period's units served, served out of new demand and short (T, S):
        views of one allocation."""
        outcome = np.empty(self._outcome_shape)
        return outcome[0], outcome[1], outcome[2]

    def _served_customers(
        self,
        new_demand: np.ndarray,
        outcome: tuple[np.ndarray, np.ndarray, np.ndarray],
        penalty: float,
        sales_value: float,
        freight: float,
    ) -> None:
        """The customers' period recorded: demand, what was served and short, the penalty for
        the units short (with the decision's shortfall penalty), sales value and freight."""
        self._served, self._served_new, self._short = outcome
        self._new_demand = new_demand
        self._penalty = penalty + self._shortfall_penalty
        self._sales_value = sales_value
        self._period_freight += freight

    def _audit_sales(self, shipped: np.ndarray) -> None:
        n = self.network
        lane_units = shipped.sum(axis=1)
        for a in np.flatnonzero(lane_units.sum(axis=1)):
            value = (shipped[a] * self._tier_price).sum(axis=0)
            self.audit_log.movements(
                self.period,
                "sale",
                n.locations[n.sales_location[a]],
                n.channels[n.sales_channel[a]],
                n.skus,
                lane_units[a],
                value,
            )

    def _finance(self):
        """The finance team: settles what falls due, then closes the period.

        The close books holding cost, penalties, interest on credit used, expiry write-offs
        and lower of cost and NRV, reports the period and checks the invariants.
        """
        while True:
            # Bills and customer payments that fall due this period are settled in cash, then the close.
            closing = self._close_books()
            if self.audit_log is not None:
                paid, collected, holding, interest, written, expired_units = closing[:6]
                self.audit_log.payment(self.period, paid, collected)
                if written or holding or self._penalty:
                    self.audit_log.close(self.period, holding, self._penalty, interest, written, expired_units)
            self._closed(*closing)
            yield

    def _closed(
        self,
        paid: float,
        collected: float,
        holding: float,
        interest: float,
        written: float,
        expired_units: float,
        revenue: float,
        profit: float,
        cost_of_goods_sold: float,
        cash: float,
        inventory_value: float,
    ) -> None:
        """The period closed (:func:`~invalloc.sim.kernels.close_books`' figures): its costs
        and reward, the invariants checked, the period's report made."""
        if cash < self.min_cash:
            self.min_cash = cash
        costs = {
            "cost_of_goods_sold": cost_of_goods_sold,
            "purchases": self._period_purchases,
            "holding": holding,
            "shipping": self._period_freight,
            "penalties": self._penalty,
            "interest": interest,
            "write_downs": written,
        }
        if self._economic:
            undiscounted = (
                self._sales_value - self._period_purchases - self._period_freight - holding - self._penalty - interest
            )
        else:
            undiscounted = profit
        ok = self._check(undiscounted, profit) if self.check_invariants else True
        # Positional, in field order (cheaper than keywords): period, reward,
        # undiscounted_reward, profit, revenue, costs, demand, served_new, served, short,
        # decision, cash, inventory_value, on_hand, written_down, expired_units, invariants_ok.
        self._report = PeriodReport(
            self.period,
            undiscounted * self._discount_factor[self.period],
            undiscounted,
            profit,
            revenue,
            costs,
            self._new_demand,
            self._served_new,
            self._served,
            self._short,
            self._decision,
            cash,
            inventory_value,
            self.on_hand.copy(),
            written,
            expired_units,
            ok,
        )

    # ------------------------------------------------------------------ invariants
    def _check(self, reward: float = 0.0, profit: float = 0.0) -> bool:
        """Check every invariant; raise :class:`InvariantError` naming the first that broke.

        Every balance, quantity and the period's reward must be finite first: a NaN passes any
        tolerance comparison, so books that overflowed would otherwise look balanced.
        """
        ledger = self.ledger
        problems = []
        balances = np.asarray(ledger.balance, dtype=float)
        if not np.isfinite(balances).all():
            names = [Account(i).name.lower() for i in np.flatnonzero(~np.isfinite(balances))[:4]]
            problems.append(f"non-finite account balance(s): {', '.join(names)} (money overflowed float64)")
        if not (np.isfinite(self.on_hand).all() and np.isfinite(self.inbound).all()):
            problems.append("non-finite on-hand or in-transit units")
        if not (np.isfinite(reward) and np.isfinite(profit)):
            problems.append(f"non-finite reward {reward} or profit {profit}")
        if problems:
            raise InvariantError(f"period {self.period}: " + "; ".join(problems))
        balance = ledger.trial_balance()
        scale = max(1.0, max(abs(b) for b in ledger.balance))
        if abs(balance) > MONEY_TOLERANCE * scale:
            problems.append(f"trial balance is {balance:.6g}, not 0")
        # Units are added and subtracted in floating point: the tolerance grows with the
        # largest quantity that has flowed through (a 1e12-unit order leaves ~1e-4 of residue).
        units = UNIT_TOLERANCE + RELATIVE_TOLERANCE * float(self.flows.into.max(initial=0.0))
        layer_units = self.layers.on_hand()
        if not np.allclose(layer_units, self.on_hand, rtol=0.0, atol=units):
            problems.append("cost-layer quantities differ from on-hand units")
        if (self.on_hand < -units).any():
            problems.append("negative on-hand stock")
        expected = self.flows.into - self.flows.out_of
        actual = self.on_hand + self.inbound
        if not np.allclose(expected, actual, rtol=0.0, atol=units):
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
            problems.append(f"a purchase took cash {-self._headroom_after_purchases:.2f} below the treasury buffer")
        if problems:
            raise InvariantError(f"period {self.period}: " + "; ".join(problems))
        return True


#: The business actors, in phase order: each one generator taking its turn every period.
_ACTORS = ("_decision_point", "_suppliers", "_receiving", "_customers", "_finance")


def _book(due: np.ndarray, amount: np.ndarray, count: int) -> dict[int, float]:
    """One book of money due (:mod:`invalloc.sim.kernels.dues`) as a dict, in its order."""
    return dict(zip(due[:count].tolist(), amount[:count].tolist(), strict=True))


def run_episode(
    simulator: Simulator, policy, seed: int | None = None, next_seed: int | None = None
) -> list[PeriodReport]:
    """Reset ``simulator`` with ``seed`` and let ``policy`` decide every period; the demand of
    the episode ``next_seed`` that follows, if given, is drawn meanwhile on a background thread."""
    simulator.reset(seed=seed)
    if next_seed is not None:
        simulator.draw_ahead(next_seed)
    policy.reset(simulator.network, seed=seed)
    reports = []
    while not simulator.done:
        reports.append(simulator.step(policy.act(simulator)))
    return reports


def run_episodes(simulator: Simulator, policy, seeds: Iterable[int]) -> Iterator[list[PeriodReport]]:
    """:func:`run_episode` on each of ``seeds`` in turn, yielding each episode's reports; each
    next episode's demand is drawn on a background thread while the one before runs."""
    seeds = [int(seed) for seed in seeds]
    for i, seed in enumerate(seeds):
        yield run_episode(simulator, policy, seed, seeds[i + 1] if i + 1 < len(seeds) else None)
