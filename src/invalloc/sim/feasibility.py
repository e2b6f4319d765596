"""The feasibility layer: any requested decision → the nearest executable one.

Every policy (rule-based baselines, learned agents, rule tables) returns *requested*
quantities; this module is the one place where the physical limits and the governance
rules are applied. Each limit only ever lowers a quantity, so applying them in sequence
keeps every earlier one satisfied, and the result satisfies all of them:

==========================  ==============================================================
rule                        what it does
==========================  ==============================================================
``invalid_request``         NaN or infinite requests become 0 (allocations: no limit → stock)
``non_negative``            negative requests become 0
``source_stock``            transfers out of a DC ≤ its unreserved on-hand stock
``lane_capacity``           units per lane and period ≤ the lane's capacity (orders released
                            from approval this period take their share first)
``supplier_capacity``       units per supplier × SKU and period ≤ its capacity
``location_capacity``       on hand + inbound ≤ the DC's storage capacity
``purchase_approval``       purchase orders above the value limit are capped or delayed
``purchase_budget``         the period's purchase value ≤ the purchase budget
``cash_rule``               cash + unused credit − payables due − purchases ≥ treasury buffer
``channel_share``           a channel receives ≤ its max share of the DC's available stock
``available_stock``         allocations of a DC together ≤ its available stock
``minimum_order_quantity``  an order below the supplier's minimum becomes 0
==========================  ==============================================================

Whole-unit SKUs are rounded down (as OR-Gym truncates its actions), so rounding never
breaks a bound; rounding is not counted as an intervention. Channel share and available
stock are applied when customers are served (:meth:`FeasibilityLayer.limit_allocations`),
because that is when this period's receipts are on hand. The loops are compiled
(:func:`invalloc.sim.kernels.project`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from invalloc.sim import kernels
from invalloc.sim.network import Network

RULES = (
    "invalid_request",
    "non_negative",
    "source_stock",
    "lane_capacity",
    "supplier_capacity",
    "location_capacity",
    "purchase_approval",
    "purchase_budget",
    "cash_rule",
    "channel_share",
    "available_stock",
    "minimum_order_quantity",
)


class FeasibilityContext(NamedTuple):
    """What the layer needs to know about the state at the decision point.

    Quantities are in units with shape (D, S); money in the scenario currency.
    """

    on_hand: np.ndarray
    inbound: np.ndarray  # units in transit to each DC (all arrival periods)
    purchase_headroom: float  # cash + unused credit − payables due in the window − buffer (inf = no rule)
    purchase_budget: float  # inf = no budget
    released_orders: np.ndarray  # (P, S) orders released from approval this period, units


@dataclass(frozen=True)
class Intervention:
    count: int  # decision entries changed
    volume: float  # units removed from requests


@dataclass(slots=True)
class FeasibleDecision:
    """Executable quantities and what the layer changed."""

    orders: np.ndarray  # (P, S) released to suppliers now
    delayed_orders: np.ndarray  # (P, S) held for approval
    transfers: np.ndarray  # (X, S)
    allocations: np.ndarray  # (A, S) max units per sales lane this period
    purchase_value: float  # value of orders + delayed orders incl. fixed costs (money)
    requested: np.ndarray  # (n_decisions,) sanitised request (+ open backorders)
    executed: np.ndarray  # (n_decisions,)
    log: np.ndarray  # (len(RULES), 2): decisions changed and units removed per rule
    shortfall: np.ndarray  # (n_decisions,) units of each replenishment request not executed (0 for allocations)
    shortfall_penalty: float  # money: shortfall × the lanes' shortfall penalty

    @property
    def interventions(self) -> dict[str, Intervention]:
        """Rules that changed something: ``{rule: Intervention(count, volume)}``."""
        return {
            rule: Intervention(int(self.log[i, 0]), float(self.log[i, 1]))
            for i, rule in enumerate(RULES)
            if self.log[i, 0]
        }

    @property
    def intervention_count(self) -> int:
        return int(sum(self.log[:, 0].tolist()))

    @property
    def intervention_volume(self) -> float:
        return float(self.log[:, 1].sum())

    @property
    def projection_distance(self) -> float:
        """Euclidean distance (units) between the sanitised request and the executed decision."""
        difference = self.requested - self.executed  # both finite: requests are sanitised first
        return math.sqrt(float(np.dot(difference, difference)))  # as difference @ difference, cheaper

    def bound_rules(self) -> list[str]:
        """Names of the rules that changed something this period."""
        return [rule for rule, count in zip(RULES, self.log[:, 0].tolist(), strict=True) if count]


def _first_columns(column: np.ndarray, block_start: np.ndarray) -> np.ndarray:
    """Per block of decisions: its first SKU where its SKUs are consecutive (``first, first + 1,
    …``), else -1."""
    first = np.full(len(block_start) - 1, -1, dtype=np.int64)
    for b, (start, stop) in enumerate(zip(block_start[:-1].tolist(), block_start[1:].tolist(), strict=True)):
        if stop > start and np.array_equal(column[start:stop], np.arange(column[start], column[start] + stop - start)):
            first[b] = column[start]
    return first


class FeasibilityLayer:
    """Projects requests onto the feasible set of one scenario (see the module docstring)."""

    def __init__(self, network: Network) -> None:
        self.network = network
        n = network
        approval = n.scenario.rules.purchase_approval
        self._approval_limit = np.inf if approval is None else approval.value_limit
        self._approval_delays = approval is not None and approval.action == "delay"
        self._unit_cost = n.purchase_unit_cost * n.purchase_offered  # (P, S)
        self._kind = np.zeros(n.n_decisions, dtype=np.int64)
        self._row = np.zeros(n.n_decisions, dtype=np.int64)
        self._column = np.zeros(n.n_decisions, dtype=np.int64)
        kinds = {"order": kernels.ORDER, "transfer": kernels.TRANSFER, "allocate": kernels.ALLOCATE}
        for kind, lane, skus, span in n.decision_blocks:
            self._kind[span] = kinds[kind]
            self._row[span] = lane
            self._column[span] = skus
        # The decisions as runs of one kind and lane (the compiled loops walk them lane by lane).
        changes = np.flatnonzero((np.diff(self._kind) != 0) | (np.diff(self._row) != 0)) + 1
        block_start = np.concatenate(([0], changes, [n.n_decisions])).astype(np.int64)
        if n.n_decisions == 0:
            block_start = np.zeros(1, dtype=np.int64)
        self._no_open = np.zeros(0)  # no request open (the projection adds +0.0)
        allocate = self._kind == kernels.ALLOCATE
        self._allocate_positions = np.flatnonzero(allocate)
        self._allocate_rows = self._row[allocate]
        self._allocate_columns = self._column[allocate]
        self._sales_share = n.channel_max_share[n.sales_channel]
        self._shapes = (
            (len(n.purchase_location), n.n_skus),
            (len(n.transfer_source), n.n_skus),
            (len(n.sales_location), n.n_skus),
        )
        rule_arrays = dict(
            kind=self._kind,
            row=self._row,
            column=self._column,
            block_start=block_start,
            block_kind=self._kind[block_start[:-1]],
            block_row=self._row[block_start[:-1]],
            block_first_column=_first_columns(self._column, block_start),
            decision_integer=n.decision_integer,
            sku_integer=n.integer_units,
            reserve=n.reserve_quantity,
            transfer_source=n.transfer_source,
            transfer_destination=n.transfer_destination,
            transfer_capacity=n.transfer_capacity,
            purchase_location=n.purchase_location,
            purchase_supplier=n.purchase_supplier,
            purchase_capacity=n.purchase_lane_capacity,
            supplier_capacity=n.supplier_capacity,
            location_capacity=n.location_capacity,
            unit_cost=self._unit_cost,
            fixed_cost=n.purchase_fixed_cost,
            minimum_order=n.purchase_moq,
            approval_limit=self._approval_limit,
            approval_delays=self._approval_delays,
            shortfall_penalty=n.decision_shortfall_penalty,
        )
        self._rules = kernels.pack_rules(kernels.packable(kernels.RULE_FIELDS, rule_arrays))
        self._n_decisions = n.n_decisions
        self._n_rules = len(RULES)

    def order_value(self, orders: np.ndarray) -> float:
        """Value of purchase orders (P, S) in money, with each ordering lane's fixed cost."""
        return float(kernels.order_value_packed(self._rules, orders))

    def project(
        self, requested: np.ndarray, context: FeasibilityContext, open_requests: np.ndarray | None = None
    ) -> FeasibleDecision:
        """Nearest executable decision to ``requested`` (n_decisions,) under every rule.

        ``open_requests`` (n_decisions,) are earlier requests still open (backordered
        replenishment), added to this period's request after it is sanitised.
        """
        flat = self.checked_request(requested)
        outputs = self.new_outputs()
        value, penalty = kernels.project_packed(
            self._rules,
            flat,
            self._no_open if open_requests is None else open_requests,
            context.on_hand,
            context.inbound,
            context.released_orders,
            context.purchase_budget,
            context.purchase_headroom,
            *outputs,
        )
        return self.decision(outputs, value, penalty)

    # The simulator projects and dispatches in one compiled call
    # (:func:`invalloc.sim.kernels.decision_point`) with these three steps around it.
    def checked_request(self, requested: np.ndarray) -> np.ndarray:
        """``requested`` as a flat, C-contiguous, writable float64 vector (n_decisions,): the one
        type the compiled period is bound to (:class:`~invalloc.sim.compiled_calls.BoundKernel`);
        ValueError if it has the wrong size."""
        if (
            requested.__class__ is np.ndarray
            and requested.dtype == np.float64
            and requested.ndim == 1
            and requested.flags.c_contiguous
            and requested.flags.writeable
        ):
            flat = requested
        else:
            flat = np.array(requested, dtype=float).reshape(-1)
        if flat.shape[0] != self._n_decisions:
            raise ValueError(f"expected {self._n_decisions} requested quantities, got shape {np.shape(requested)}")
        return flat

    def new_outputs(self) -> tuple[np.ndarray, ...]:
        """Uninitialised arrays the projection fills: requested, orders, delayed, transfers,
        allocations, executed, shortfall and log (the :class:`FeasibleDecision` fields)."""
        orders_shape, transfers_shape, allocations_shape = self._shapes
        n_decisions, empty = self._n_decisions, np.empty
        return (
            empty(n_decisions),
            empty(orders_shape),
            empty(orders_shape),
            empty(transfers_shape),
            empty(allocations_shape),
            empty(n_decisions),
            empty(n_decisions),
            empty((self._n_rules, 2)),
        )

    @staticmethod
    def decision(outputs: tuple[np.ndarray, ...], value: float, penalty: float) -> FeasibleDecision:
        """The :class:`FeasibleDecision` of filled ``outputs`` (:meth:`new_outputs`)."""
        requested, orders, delayed, transfers, allocations, executed, shortfall, log = outputs
        return FeasibleDecision(
            orders, delayed, transfers, allocations, value, requested, executed, log, shortfall, penalty
        )

    def record_allocations(self, decision: FeasibleDecision) -> None:
        """Copy the allocations as capped at the customer phase into the decision's executed vector.

        Channel share, sales-lane capacity and available stock cap allocations when
        customers are served (:func:`invalloc.sim.kernels.limit_allocations`), because that
        is when this period's receipts are on hand.
        """
        if self._allocate_positions.size:
            kernels.record_allocations(
                decision.executed,
                decision.allocations,
                self._allocate_positions,
                self._allocate_rows,
                self._allocate_columns,
            )
