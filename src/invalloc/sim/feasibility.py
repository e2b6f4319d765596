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
``lane_capacity``           units per lane and period ≤ the lane's capacity
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
breaks a bound; rounding is not counted as an intervention.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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


@dataclass(frozen=True)
class FeasibilityContext:
    """What the layer needs to know about the state at the decision point.

    Quantities are in units with shape (D, S); money in the scenario currency.
    """

    on_hand: np.ndarray
    inbound: np.ndarray  # units in transit to each DC (all arrival periods)
    purchase_headroom: float  # cash + unused credit − payables due in the window − buffer (inf = no rule)
    purchase_budget: float  # inf = no budget


@dataclass
class Intervention:
    count: int = 0  # decision entries changed
    volume: float = 0.0  # units removed from requests


@dataclass
class FeasibleDecision:
    """Executable quantities and what the layer changed."""

    orders: np.ndarray  # (P, S) released to suppliers now
    delayed_orders: np.ndarray  # (P, S) held for approval
    transfers: np.ndarray  # (X, S)
    allocations: np.ndarray  # (A, S) max units per sales lane this period
    purchase_value: float  # value of orders + delayed orders incl. fixed costs (money)
    requested: np.ndarray  # (n_decisions,) sanitised request
    executed: np.ndarray  # (n_decisions,)
    interventions: dict[str, Intervention] = field(default_factory=dict)

    @property
    def shortfall(self) -> np.ndarray:
        """Units of each replenishment request (n_decisions,) not executed this period."""
        return np.where(self.replenishment_mask, self.requested - self.executed, 0.0)

    replenishment_mask: np.ndarray = None  # type: ignore[assignment]

    @property
    def projection_distance(self) -> float:
        """Euclidean distance (units) between the sanitised request and the executed decision."""
        return float(np.linalg.norm(self.requested - self.executed))

    def bound_rules(self) -> list[str]:
        return [name for name, item in self.interventions.items() if item.count]


def _scale_to(values: np.ndarray, total: float, limit: float) -> tuple[np.ndarray, bool]:
    if total <= limit or total <= 0:
        return values, False
    return values * max(limit, 0.0) / total, True


class FeasibilityLayer:
    """Projects requests onto the feasible set of one scenario (see the module docstring)."""

    def __init__(self, network: Network) -> None:
        self.network = network
        rules = network.scenario.rules
        self.approval = rules.purchase_approval
        self.cash_rule = rules.cash_rule
        n = network
        self.lane_cost = n.purchase_unit_cost * n.purchase_offered  # (P, S)
        self.integer = n.integer_units
        self.any_integer = bool(self.integer.any())
        self._has_transfers = len(n.transfer_source) > 0
        self._has_capacity = bool(np.isfinite(n.location_capacity).any())
        self._has_supplier_capacity = bool(np.isfinite(n.supplier_capacity).any())
        self._has_moq = bool((n.purchase_moq > 0).any())
        self._has_reserve = bool((n.reserve_quantity > 0).any())
        self._share_limited = bool((n.channel_max_share < 1).any())

    # -- helpers ----------------------------------------------------------------------------
    def _record(self, log: dict[str, Intervention], rule: str, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        changed = before != after
        if changed.any():
            entry = log.setdefault(rule, Intervention())
            entry.count += int(changed.sum())
            finite = np.isfinite(before) & np.isfinite(after)
            entry.volume += float(np.abs(before - after)[finite & changed].sum())
        return after

    def _floor(self, values: np.ndarray) -> np.ndarray:
        if not self.any_integer:
            return values
        return np.where(self.integer, np.floor(values + 1e-9), values)

    def _order_value(self, orders: np.ndarray) -> np.ndarray:
        """Value per purchase lane (P,) incl. the fixed cost of lanes that order anything."""
        variable = (orders * self.lane_cost).sum(axis=1)
        return variable + np.where(orders.sum(axis=1) > 0, self.network.purchase_fixed_cost, 0.0)

    # -- the projection -------------------------------------------------------------------
    def project(
        self, requested: np.ndarray, context: FeasibilityContext, open_requests: np.ndarray | None = None
    ) -> FeasibleDecision:
        """Nearest executable decision to ``requested`` (n_decisions,) under every rule.

        ``open_requests`` (n_decisions,) are earlier requests still open (backordered
        replenishment), added to this period's request after it is sanitised.
        """
        n = self.network
        log: dict[str, Intervention] = {}
        flat = np.asarray(requested, dtype=float).reshape(-1)
        if flat.shape != (n.n_decisions,):
            raise ValueError(f"expected {n.n_decisions} requested quantities, got shape {np.shape(requested)}")
        if not np.isfinite(flat).all():
            flat = self._record(log, "invalid_request", flat, np.where(np.isfinite(flat), flat, 0.0))
        if (flat < 0).any():
            flat = self._record(log, "non_negative", flat, np.maximum(flat, 0.0))
        if self.any_integer:
            flat = np.where(n.decision_integer, np.floor(flat + 1e-9), flat)
        if open_requests is not None:
            flat = flat + open_requests
        sanitised = flat
        orders, transfers, allocations = n.split_decisions(flat)

        # Transfers leave from stock on hand at the start of the period (before arrivals).
        unreserved = np.maximum(context.on_hand - n.reserve_quantity, 0.0)
        if self._has_transfers:
            transfers = self._limit_transfers(transfers, unreserved, log)

        # Lane and supplier capacities on purchase orders.
        lane_total = orders.sum(axis=1)
        over = lane_total > n.purchase_lane_capacity
        if over.any():
            factor = np.where(over, n.purchase_lane_capacity / np.maximum(lane_total, 1e-12), 1.0)
            orders = self._record(log, "lane_capacity", orders, self._floor(orders * factor[:, None]))
        if self._has_supplier_capacity:
            per_supplier = np.zeros_like(n.supplier_capacity)
            np.add.at(per_supplier, n.purchase_supplier, orders)
            factor = np.where(per_supplier > n.supplier_capacity, n.supplier_capacity / np.maximum(per_supplier, 1e-12), 1.0)
            if (factor < 1).any():
                orders = self._record(log, "supplier_capacity", orders, self._floor(orders * factor[n.purchase_supplier]))

        if self._has_capacity:
            orders, transfers = self._limit_storage(orders, transfers, context, log)

        orders, delayed = self._purchase_rules(orders, context, log)

        if self._has_moq:
            for name, block in (("orders", orders), ("delayed", delayed)):
                small = (block > 0) & (block < n.purchase_moq - 1e-9)
                if small.any():
                    fixed = np.where(small, 0.0, block)
                    self._record(log, "minimum_order_quantity", block, fixed)
                    if name == "orders":
                        orders = fixed
                    else:
                        delayed = fixed

        value = float(self._order_value(orders).sum() + self._order_value(delayed).sum()) if orders.size else 0.0
        executed = n.join_decisions(orders + delayed, transfers, allocations)
        return FeasibleDecision(
            orders=orders,
            delayed_orders=delayed,
            transfers=transfers,
            allocations=allocations,
            purchase_value=value,
            requested=np.where(np.isfinite(sanitised), sanitised, executed),
            executed=executed,
            interventions=log,
            replenishment_mask=n.decision_replenishment,
        )

    def _limit_transfers(self, transfers: np.ndarray, unreserved: np.ndarray, log: dict) -> np.ndarray:
        n = self.network
        lane_total = transfers.sum(axis=1)
        over = lane_total > n.transfer_capacity
        if over.any():
            factor = np.where(over, n.transfer_capacity / np.maximum(lane_total, 1e-12), 1.0)
            transfers = self._record(log, "lane_capacity", transfers, self._floor(transfers * factor[:, None]))
        outbound = np.zeros_like(unreserved)
        np.add.at(outbound, n.transfer_source, transfers)
        factor = np.where(outbound > unreserved, unreserved / np.maximum(outbound, 1e-12), 1.0)
        if (factor < 1).any():
            limited = self._floor(transfers * factor[n.transfer_source])
            # Rounding down each lane keeps the sum within stock.
            transfers = self._record(log, "source_stock", transfers, limited)
        return transfers

    def _limit_storage(self, orders: np.ndarray, transfers: np.ndarray, context: FeasibilityContext, log: dict):
        n = self.network
        inbound = np.zeros(len(n.locations))
        np.add.at(inbound, n.purchase_location, orders.sum(axis=1))
        if self._has_transfers:
            np.add.at(inbound, n.transfer_destination, transfers.sum(axis=1))
            np.subtract.at(inbound, n.transfer_source, transfers.sum(axis=1))
        position = context.on_hand.sum(axis=1) + context.inbound.sum(axis=1)
        room = np.maximum(n.location_capacity - position, 0.0)
        over = inbound > room
        if over.any():
            factor = np.where(over, room / np.maximum(inbound, 1e-12), 1.0)
            orders = self._record(log, "location_capacity", orders, self._floor(orders * factor[n.purchase_location, None]))
            if self._has_transfers:
                transfers = self._record(
                    log, "location_capacity", transfers, self._floor(transfers * factor[n.transfer_destination, None])
                )
        return orders, transfers

    def _purchase_rules(self, orders: np.ndarray, context: FeasibilityContext, log: dict):
        n = self.network
        delayed = np.zeros_like(orders)
        if orders.size == 0:
            return orders, delayed
        if self.approval is not None:
            value = self._order_value(orders)
            over = value > self.approval.value_limit
            if over.any():
                if self.approval.action == "delay":
                    delayed = np.where(over[:, None], orders, 0.0)
                    orders = self._record(log, "purchase_approval", orders, orders - delayed)
                else:
                    variable = value - np.where(orders.sum(axis=1) > 0, n.purchase_fixed_cost, 0.0)
                    allowed = np.maximum(self.approval.value_limit - n.purchase_fixed_cost, 0.0)
                    factor = np.where(over, allowed / np.maximum(variable, 1e-12), 1.0)
                    orders = self._record(log, "purchase_approval", orders, self._floor(orders * factor[:, None]))
        for rule, limit in (("purchase_budget", context.purchase_budget), ("cash_rule", context.purchase_headroom)):
            if not np.isfinite(limit):
                continue
            total = float(self._order_value(orders).sum() + self._order_value(delayed).sum())
            if total <= limit:
                continue
            lanes_ordering = (orders + delayed).sum(axis=1) > 0
            fixed = float(n.purchase_fixed_cost[lanes_ordering].sum())
            variable = total - fixed
            factor = max(limit - fixed, 0.0) / max(variable, 1e-12) if limit > fixed else 0.0
            orders = self._record(log, rule, orders, self._floor(orders * factor))
            delayed = self._record(log, rule, delayed, self._floor(delayed * factor))
        return orders, delayed

    def limit_allocations(self, decision: FeasibleDecision, available: np.ndarray) -> np.ndarray:
        """Cap the decision's allocations (A, S) by the stock ``available`` (D, S) when customers are served.

        Called at the customer phase, when this period's receipts are on hand: channel share
        and available stock are rules on the stock a channel may receive *now*. Updates the
        decision (allocations, executed quantities, interventions) and returns the allocations.
        """
        n = self.network
        log = decision.interventions
        allocations = decision.allocations
        if allocations.size == 0:
            return allocations
        per_lane = available[n.sales_location]  # (A, S)
        decided = n.sales_has_decision[:, None]
        # Lanes without a decision may take all available stock (their request is "no limit").
        allocations = np.where(decided, allocations, per_lane)
        if self._share_limited:
            cap = self._floor(n.channel_max_share[n.sales_channel][:, None] * per_lane)
            limited = np.minimum(allocations, cap)
            allocations = self._record(log, "channel_share", np.where(decided, allocations, limited), limited)
        if decided.any():
            capped = np.minimum(allocations, per_lane)
            allocations = self._record(log, "available_stock", allocations, capped)
            total = np.zeros_like(available)
            np.add.at(total, n.sales_location, allocations)
            factor = np.where(total > available, available / np.maximum(total, 1e-12), 1.0)
            if (factor < 1).any():
                allocations = self._record(
                    log, "available_stock", allocations, self._floor(allocations * factor[n.sales_location])
                )
            decision.executed = n.join_decisions(decision.orders + decision.delayed_orders, decision.transfers, allocations)
        decision.allocations = allocations
        return allocations
