"""Network structure that replenishment and allocation rules share (policies and the env).

Everything here is computed once per network: where each DC × SKU replenishes from, which
DCs carry which tiers' demand, and the allocation decisions grouped by sales lane. Shapes
follow :mod:`invalloc.sim.network` (``L`` = sales lanes with an allocation decision).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from invalloc.sim.kernels import sourcing as sourcing_kernels
from invalloc.sim.kernels.packing import SOURCING_FIELDS, pack_sourcing, packable
from invalloc.sim.network import Network
from invalloc.sim.simulator import Simulator


def downstream_order(network: Network) -> list[int]:
    """DC indices, nearest to customers first (distance in transfer hops to a sales lane)."""
    n_loc = len(network.locations)
    distance = np.full(n_loc, np.inf)
    distance[np.unique(network.sales_location)] = 0
    for _ in range(n_loc):
        for source, destination in zip(network.transfer_source, network.transfer_destination, strict=True):
            distance[source] = min(distance[source], distance[destination] + 1)
    return sorted(range(n_loc), key=lambda d: (distance[d], d))


def echelons(network: Network) -> np.ndarray:
    """(D, D) bool: row d marks d and every DC downstream of it through transfer lanes."""
    n_loc = len(network.locations)
    member = np.eye(n_loc, dtype=bool)
    for _ in range(n_loc):
        for source, destination in zip(network.transfer_source, network.transfer_destination, strict=True):
            member[source] |= member[destination]
    return member


@dataclass
class Replenishment:
    """Where each DC × SKU's request goes: the decision index of its first inbound lane."""

    decision_index: np.ndarray  # (D, S) int, -1 where no inbound lane offers the SKU
    lead_time: np.ndarray  # (D, S) mean lead time of that lane, periods

    @classmethod
    def build(cls, network: Network) -> Replenishment:
        n_loc, n_sku = len(network.locations), network.n_skus
        index = np.full((n_loc, n_sku), -1)
        lead = np.zeros((n_loc, n_sku))
        for kind, lane, skus, span in network.decision_blocks:
            if kind == "allocate":
                continue
            if kind == "order":
                d = network.purchase_location[lane]
                mean_lead = network.purchase_lead_time[lane].mean
            else:
                d = network.transfer_destination[lane]
                mean_lead = network.transfer_lead_time[lane].mean
            positions = np.arange(span.start, span.stop)
            free = index[d, skus] < 0
            index[d, skus[free]] = positions[free]
            lead[d, skus[free]] = mean_lead
        return cls(index, lead)


def through_channels(network: Network) -> np.ndarray:
    """(D, C) share of each channel's demand that flows through each DC.

    A channel's demand is shared equally by the DCs serving it; a DC supplying others by
    transfer carries their demand too (shared equally among their sources).
    """
    n_loc, n_channels = len(network.locations), len(network.channels)
    through = np.zeros((n_loc, n_channels))
    servers = np.bincount(network.sales_channel, minlength=n_channels)
    for d, c in zip(network.sales_location, network.sales_channel, strict=True):
        through[d, c] += 1.0 / servers[c]
    for d in downstream_order(network):
        sources = network.transfer_source[network.transfer_destination == d]
        for source in sources:
            through[source] += through[d] / len(sources)
    return through


def through_tiers(network: Network) -> np.ndarray:
    """(D, T): share of each tier's demand flowing through each DC."""
    tier_to_channel = np.zeros((len(network.channels), len(network.tiers)))
    tier_to_channel[network.tier_channel, np.arange(len(network.tiers))] = 1.0
    return through_channels(network) @ tier_to_channel


class PlanningView:
    """Per-network constants of replenishment and allocation rules.

    :ivar route: each DC × SKU's first inbound lane (:class:`Replenishment`).
    :ivar through: (D, T) share of each tier's demand that flows through each DC.
    :ivar echelon: (D, D) 1.0 where row DC's echelon contains the column DC.
    :ivar downstream: DC indices, nearest to customers first.
    :ivar backlog_to_location: (D, T) 1.0 where a tier's backlog counts against a DC.
    :ivar tier_to_channel: (C, T) 1.0 where a tier belongs to a channel.
    :ivar routed_cells: flat DC × SKU indices that have an inbound lane.
    :ivar routed_decisions: their decision indices (same length).
    :ivar allocation_positions: (L, S) decision index of each allocation decision.
    :ivar allocation_locations / allocation_channels: (L,) DC and channel of each such lane.
    :ivar allocation_incidence: (D, L) 1.0 where a lane leaves a DC.
    """

    def __init__(self, network: Network) -> None:
        self.network = network
        n_loc, n_tiers = len(network.locations), len(network.tiers)
        self.route = Replenishment.build(network)
        self.through = through_tiers(network)
        self.echelon = echelons(network).astype(float)
        self.downstream = downstream_order(network)
        # Customer backlog counts against the first DC serving the channel.
        first_server = np.full(len(network.channels), -1)
        for d, c in zip(network.sales_location[::-1], network.sales_channel[::-1], strict=True):
            first_server[c] = d
        self.backlog_to_location = np.zeros((n_loc, n_tiers))
        self.backlog_to_location[first_server[network.tier_channel], np.arange(n_tiers)] = 1.0
        self.tier_to_channel = np.zeros((len(network.channels), n_tiers))
        self.tier_to_channel[network.tier_channel, np.arange(n_tiers)] = 1.0
        routed = self.route.decision_index >= 0
        self.routed_cells = np.flatnonzero(routed.ravel())
        self.routed_decisions = self.route.decision_index.ravel()[self.routed_cells]
        blocks = [(lane, span) for kind, lane, _, span in network.decision_blocks if kind == "allocate"]
        lanes = np.array([lane for lane, _ in blocks], dtype=int)
        self.allocation_positions = np.array([np.arange(span.start, span.stop) for _, span in blocks], dtype=int)
        self.allocation_locations = network.sales_location[lanes]
        self.allocation_channels = network.sales_channel[lanes]
        self.allocation_incidence = np.zeros((n_loc, len(blocks)))
        self.allocation_incidence[self.allocation_locations, np.arange(len(blocks))] = 1.0
        self.allocation_lanes_per_location = self.allocation_incidence.sum(axis=1)
        self.order_to_customer = self._order_to_customer()
        self.sourcing = Sourcing(network)
        # Where each replenishment decision delivers: DC and SKU (-1 for allocations).
        self._decision_location = np.full(network.n_decisions, -1)
        self._decision_sku = np.full(network.n_decisions, -1)
        for kind, lane, skus, span in network.decision_blocks:
            if kind != "allocate":
                d = network.purchase_location[lane] if kind == "order" else network.transfer_destination[lane]
                self._decision_location[span] = d
                self._decision_sku[span] = skus
        self._replenishment_decisions = np.flatnonzero(self._decision_location >= 0)
        self._purchase_locations = network.purchase_location.tolist()
        self._backorders = bool(network.scenario.episode.backorder_replenishment)
        self._transfer_sources = network.transfer_source.tolist()
        #: Each allocation lane's even share of its DC's stock (L,), where no lane of the DC has a weight.
        self.lane_even_share = np.ascontiguousarray(
            1.0 / np.maximum(self.allocation_lanes_per_location[self.allocation_locations], 1), dtype=float
        )
        self._through_memo = PeriodMemo()
        self._nothing_committed = _read_only(np.zeros((n_loc, network.n_skus)))

    def _order_to_customer(self) -> np.ndarray:
        """(D,) periods from a DC's replenishment order to the earliest customer delivery of it.

        The DC's longest inbound lead time (over SKUs) plus the shortest path of transfer and
        sales lead times from the DC down to a customer.
        """
        n = self.network
        to_customer = np.full(len(n.locations), np.inf)
        for a, d in enumerate(n.sales_location):
            to_customer[d] = min(to_customer[d], n.sales_lead_time[a].values.min())
        for d in self.downstream:
            for x in np.flatnonzero(n.transfer_source == d):
                below = n.transfer_destination[x]
                to_customer[d] = min(to_customer[d], n.transfer_lead_time[x].values.min() + to_customer[below])
        return self.route.lead_time.max(axis=1) + np.where(np.isfinite(to_customer), to_customer, 0.0)

    def last_useful_order(self, horizon: int) -> np.ndarray:
        """(D,) last period in which a DC's order can still reach a customer within ``horizon``."""
        return horizon - 1 - self.order_to_customer

    def positions(self, simulator: Simulator, echelon: bool = False, committed: bool = False) -> np.ndarray:
        """Inventory position per DC × SKU (D, S): on hand + inbound − customer backlog (units).

        With ``echelon``, each DC's position includes every DC downstream of it. With
        ``committed``, it also includes what is ordered but not yet shipped
        (:meth:`committed`), so a rule does not order the same units twice.
        """
        position = simulator.on_hand + simulator.inbound - self.backlog_to_location @ simulator.backlog
        if committed:
            position = position + self.committed(simulator)
        return self.echelon @ position if echelon else position

    def need(self, simulator: Simulator, target: np.ndarray, committed: bool = False) -> np.ndarray:
        """Units that bring each DC × SKU's position up to ``target`` (D, S), never negative:
        ``np.maximum(target - self.positions(simulator, committed=committed), 0.0)``, the same
        numbers with the position's arithmetic compiled (no temporaries)."""
        backlog_at = self.backlog_at(simulator)
        held = self._committed_or_zeros(simulator) if committed else backlog_at
        gap = np.empty(backlog_at.shape)
        sourcing_kernels.position_gap(
            np.ascontiguousarray(target, dtype=float),
            simulator.on_hand,
            simulator.inbound,
            backlog_at,
            held,
            committed,
            gap,
        )
        return np.maximum(gap, 0.0, out=gap)

    def backlog_at(self, simulator: Simulator) -> np.ndarray:
        """Customer backlog counted against each DC (D, S): ``backlog_to_location @ backlog``, or
        a shared read-only array of +0.0 when the backlog is all +0.0 (as with lost sales), which
        is what the product gives then (no matrix product)."""
        if sourcing_kernels.all_positive_zero(simulator.backlog):
            return self._nothing_committed
        return self.backlog_to_location @ simulator.backlog

    def _committed_or_zeros(self, simulator: Simulator) -> np.ndarray:
        """:meth:`committed`, or a shared read-only array of zeros when nothing is committed
        (no order held for approval, no open request): the same numbers, no new array."""
        if not simulator.pending_approval and not (
            self._backorders and simulator.open_requests[self._replenishment_decisions].any()
        ):
            return self._nothing_committed
        return self.committed(simulator)

    @staticmethod
    def arriving_now(simulator: Simulator) -> np.ndarray:
        """Units arriving at each DC this period (D, S): ``simulator.arriving(simulator.period)``
        as a read-only view of the ring of goods in transit (indexed by arrival period modulo
        its length), not a copy."""
        ring = simulator.transit_units
        arriving = ring[simulator.period % ring.shape[0]]
        arriving.flags.writeable = False
        return arriving

    def committed(self, simulator: Simulator) -> np.ndarray:
        """Units ordered but not yet shipped per DC × SKU (D, S): purchase orders held for
        approval (released in a later period) and backordered replenishment requests."""
        n = self.network
        held = np.zeros((len(n.locations), n.n_skus))
        locations = self._purchase_locations
        for orders in simulator.pending_approval.values():
            # As np.add.at(held, purchase_location, orders), lane by lane (much cheaper).
            for p, d in enumerate(locations):
                held[d] += orders[p]
        if not self._backorders:
            return held  # requests are never backordered: none is open
        decisions = self._replenishment_decisions
        open_requests = simulator.open_requests[decisions]
        if open_requests.any():
            np.add.at(held, (self._decision_location[decisions], self._decision_sku[decisions]), open_requests)
        return held

    def demand_through(self, simulator: Simulator) -> np.ndarray:
        """Expected demand per period flowing through each DC (D, S), units (read-only).

        A simulator's forecast is fixed (from the scenario), so this is computed once per
        simulator and period (:class:`PeriodMemo`).
        """
        memo = self._through_memo.of(simulator)
        through = memo.get(simulator.period)
        if through is None:
            through = memo[simulator.period] = _read_only(self.through @ simulator.demand_forecast())
        return through

    def order_up_to(
        self, simulator: Simulator, requests: np.ndarray, target: np.ndarray, echelon: bool = False
    ) -> None:
        """Add to ``requests`` (n_decisions,) what brings each DC × SKU's position up to ``target`` (D, S)."""
        order = np.maximum(target - self.positions(simulator, echelon), 0.0)
        requests[self.routed_decisions] += order.ravel()[self.routed_cells]

    def available_to_customers(self, simulator: Simulator, transfers: np.ndarray | None = None) -> np.ndarray:
        """Stock each DC can sell this period (D, S): on hand − ``transfers`` (X, S) leaving now + arriving now."""
        available = simulator.on_hand + simulator.arriving(simulator.period)
        if transfers is not None and len(transfers):
            for x, d in enumerate(self._transfer_sources):  # as np.add.at(available, source, -transfers)
                available[d] += -transfers[x]
        return available

    def channel_caps(self, available: np.ndarray) -> np.ndarray:
        """Most each allocation lane may receive (L, S): its channel's maximum share of the DC's
        ``available`` stock (D, S), rounded down as the feasibility layer rounds it."""
        n = self.network
        share = n.channel_max_share[self.allocation_channels][:, None]
        stock = available[self.allocation_locations]
        whole = n.integer_units[None, :]
        return np.where(share < 1.0, np.where(whole, np.floor(share * stock + 1e-9), share * stock), stock)

    def channel_need(self, simulator: Simulator) -> np.ndarray:
        """Expected demand plus backlog per allocation lane's channel (L, S), units."""
        need = self.tier_to_channel @ (simulator.demand_forecast() + simulator.backlog)
        return need[self.allocation_channels]

    def allocate_by_weight(
        self, simulator: Simulator, requests: np.ndarray, weights: np.ndarray, available: np.ndarray | None = None
    ) -> None:
        """Split each DC's available stock over its allocation lanes in proportion to ``weights`` (L, S).

        ``available`` (D, S): the stock to split; None: on hand + arriving now.
        """
        if available is None:
            available = simulator.on_hand + simulator.arriving(simulator.period)
        available = available[self.allocation_locations]
        total = (self.allocation_incidence @ weights)[self.allocation_locations]
        # Where no lane of a DC has any weight, its lanes share evenly.
        shares = np.where(total > 0, weights / np.maximum(total, 1e-300), self.lane_even_share[:, None])
        requests[self.allocation_positions] = np.floor(shares * available)


class PeriodMemo:
    """Values that depend only on a simulator's fixed data and its period, computed once per
    period and kept while the same simulator is used (:meth:`of` starts afresh for another)."""

    def __init__(self) -> None:
        self._simulator: weakref.ref | None = None
        self._values: dict[int, np.ndarray] = {}

    def of(self, simulator: Simulator) -> dict[int, np.ndarray]:
        """The values remembered for ``simulator``, by period."""
        if self._simulator is None or self._simulator() is not simulator:
            self._simulator = weakref.ref(simulator)
            self._values = {}
        return self._values


def _read_only(values: np.ndarray) -> np.ndarray:
    """``values``, marked read-only (shared by every caller of a memo)."""
    values.flags.writeable = False
    return values


def whole_units(values: np.ndarray, integer: np.ndarray) -> np.ndarray:
    """Round whole-unit SKUs down as the feasibility layer does (``integer``: bool per entry)."""
    return np.where(integer, np.floor(values + 1e-9), values)


class Sourcing:
    """Turns a need per DC × SKU into replenishment requests that can all ship this period.

    The deterministic rules of :mod:`invalloc.sim.feasibility`, applied by a planner before
    ordering rather than by the layer afterwards, so the layer has nothing left to change:

    - each DC × SKU's inbound lanes are used **cheapest landed cost first** (purchase: unit
      cost + freight per unit; transfer: freight per unit, so stock already in the network
      is moved before new stock is bought); what one lane cannot take goes to the next;
    - a transfer is at most the source DC's unreserved stock on hand now (shared by its
      outbound lanes in proportion to their requests) and the lane's capacity;
    - a purchase order is at most the lane's capacity and the supplier's capacity per SKU
      left after the orders released from approval this period, and the lane's order value
      stays within the approval limit (the limit applies per lane and order, so a second
      supplier adds headroom): lots just under the limit are released now instead of held;
    - the DC's storage room (capacity − on hand − inbound − released orders) is not exceeded;
    - all purchase orders together stay within the period's purchase budget and the cash
      rule's headroom;
    - an order below the supplier's minimum order quantity is not placed on that lane (its
      units go to the next lane, e.g. a supplier without a minimum).

    Whole-unit SKUs are rounded down. Where a limit binds, the requests it covers are scaled
    down in proportion (as the layer would), so no SKU is starved by the order of the loop.

    :ivar options: per rank k (cheapest first) the lanes that are some DC × SKU's k-th
        option: ``(kind, lane, location, sku indices, decision indices)``.
    :ivar lead_time: (D, S) mean lead time of each DC × SKU's cheapest inbound lane, periods.
    """

    def __init__(self, network: Network) -> None:
        self.network = n = network
        n_loc, n_sku = len(n.locations), n.n_skus
        cells: dict[tuple[int, int], list[tuple[float, int, str, int, int]]] = {}
        for order, (kind, lane, skus, span) in enumerate(n.decision_blocks):
            if kind == "allocate":
                continue
            for position, s in zip(range(span.start, span.stop), skus.tolist(), strict=True):
                if kind == "order":
                    d = int(n.purchase_location[lane])
                    cost = float(n.purchase_unit_cost[lane, s] + n.purchase_shipping_cost[lane])
                else:
                    d = int(n.transfer_destination[lane])
                    cost = float(n.transfer_shipping_cost[lane])
                cells.setdefault((d, s), []).append((cost, order, kind, int(lane), position))
        ranks = max((len(v) for v in cells.values()), default=0)
        grouped: list[dict[tuple[str, int], tuple[list[int], list[int]]]] = [{} for _ in range(ranks)]
        self.lead_time = np.zeros((n_loc, n_sku))
        for (d, s), lanes in cells.items():
            for k, (_, _, kind, lane, position) in enumerate(sorted(lanes)):
                skus, positions = grouped[k].setdefault((kind, lane), ([], []))
                skus.append(s)
                positions.append(position)
                if k == 0:
                    samplers = n.purchase_lead_time if kind == "order" else n.transfer_lead_time
                    self.lead_time[d, s] = samplers[lane].mean
        self.options = [
            [
                (
                    kind,
                    lane,
                    int(n.purchase_location[lane] if kind == "order" else n.transfer_destination[lane]),
                    np.array(skus, dtype=int),
                    np.array(positions, dtype=int),
                )
                for (kind, lane), (skus, positions) in sorted(rank.items(), key=lambda item: item[1][1][0])
            ]
            for rank in grouped
        ]
        approval = n.scenario.rules.purchase_approval
        self.approval_limit = np.inf if approval is None else float(approval.value_limit)
        self.unit_cost = n.purchase_unit_cost * n.purchase_offered  # (P, S), as the layer values orders
        self.any_storage_limit = bool(np.isfinite(n.location_capacity).any())
        self.any_supplier_limit = bool(np.isfinite(n.supplier_capacity).any())
        # Per rank and option, what request() reads of the network, gathered once:
        # (rounding, unit cost (k,), minimum order − 1e-9 (k,), owner of the shared limit).
        integer = n.integer_units
        self._constants = [
            [
                (
                    _Rounding(integer[skus]),
                    self.unit_cost[lane, skus] if kind == "order" else None,
                    n.purchase_moq[lane, skus] - 1e-9 if kind == "order" else None,
                    int(n.transfer_source[lane] if kind == "transfer" else n.purchase_supplier[lane]),
                )
                for kind, lane, _, skus, _ in options
            ]
            for options in self.options
        ]
        self._kinds = [{kind for kind, *_ in options} for options in self.options]
        self._flat = self._flatten()
        # The limits as float64 arrays, for the compiled step (:meth:`request`).
        self._lane_capacity = np.ascontiguousarray(n.purchase_lane_capacity, dtype=float)
        self._supplier_capacity = np.ascontiguousarray(n.supplier_capacity, dtype=float)
        self._transfer_capacity = np.ascontiguousarray(n.transfer_capacity, dtype=float)
        self._reserve = np.ascontiguousarray(np.broadcast_to(n.reserve_quantity, (n_loc, n_sku)), dtype=float)
        self._location_capacity = np.ascontiguousarray(n.location_capacity, dtype=float)
        self._limits = (
            self._lane_capacity,
            self._supplier_capacity,
            n.purchase_supplier,
            n.purchase_location,
            self._transfer_capacity,
            self._reserve,
            self._location_capacity,
        )
        # The limits and options packed once (one compiled argument instead of 24).
        self._packed = None
        if self._flat is not None:
            fields = dict(zip(SOURCING_FIELDS, self._limits + self._flat[1:], strict=True))
            self._packed = pack_sourcing(packable(SOURCING_FIELDS, fields))
        self._n_transfers = len(n.transfer_source)

    def _flatten(self) -> tuple | None:
        """The options as flat arrays for the compiled rank loop
        (:func:`invalloc.sim.kernels.sourcing.source_requests`), or None where the compiled
        arithmetic cannot match numpy's here (then :meth:`request` runs the numpy code)."""
        ddot = _exact_arithmetic()
        if not ddot:
            return None
        n = self.network
        flat_options = [option for options in self.options for option in options]
        rank_start = np.cumsum([0] + [len(options) for options in self.options]).astype(np.int64)
        sizes = [len(skus) for _, _, _, skus, _ in flat_options]
        cell_start = np.cumsum([0, *sizes]).astype(np.int64)
        empty_int, empty_float = np.zeros(0, dtype=np.int64), np.zeros(0)
        order = sourcing_kernels.ORDER

        def cells(values) -> np.ndarray:
            return np.concatenate(values) if values else empty_float

        unit_cost = cells(
            [
                (unit if unit is not None else np.zeros(len(skus))).astype(float)
                for options, constants in zip(self.options, self._constants, strict=True)
                for (_, _, _, skus, _), (_, unit, _, _) in zip(options, constants, strict=True)
            ]
        )
        moq_floor = cells(
            [
                (floor if floor is not None else np.zeros(len(skus))).astype(float)
                for options, constants in zip(self.options, self._constants, strict=True)
                for (_, _, _, skus, _), (_, _, floor, _) in zip(options, constants, strict=True)
            ]
        )
        return (
            ddot,
            rank_start,
            np.array(
                [order if kind == "order" else sourcing_kernels.TRANSFER for kind, *_ in flat_options], dtype=np.int64
            ),
            np.array([lane for _, lane, *_ in flat_options], dtype=np.int64),
            np.array([d for _, _, d, *_ in flat_options], dtype=np.int64),
            np.array([c[3] for constants in self._constants for c in constants], dtype=np.int64),
            cell_start,
            np.concatenate([skus for *_, skus, _ in flat_options]).astype(np.int64) if flat_options else empty_int,
            np.concatenate([p for *_, p in flat_options]).astype(np.int64) if flat_options else empty_int,
            np.ascontiguousarray(unit_cost),
            np.ascontiguousarray(moq_floor),
            np.array(["transfer" in kinds for kinds in self._kinds], dtype=bool),
            np.array(["order" in kinds for kinds in self._kinds], dtype=bool),
            n.integer_units.astype(bool),
            n.purchase_fixed_cost.astype(float),
            float(self.approval_limit),
            self.any_supplier_limit,
            self.any_storage_limit,
        )

    def request(self, simulator: Simulator, need: np.ndarray, requests: np.ndarray) -> np.ndarray:
        """Add to ``requests`` (n_decisions,) executable orders and transfers for ``need`` (D, S) units.

        Returns the units requested on transfer lanes (X, S), so the caller knows what leaves
        each source DC now. The rank loop is compiled where its arithmetic matches numpy's
        (:mod:`invalloc.sim.kernels.sourcing`); :meth:`request_numpy` is the same in numpy.
        """
        if self._packed is None:
            return self.request_numpy(simulator, need, requests)
        context = simulator.context()
        transfers = np.zeros((self._n_transfers, self.network.n_skus))
        sourcing_kernels.plan_sources_packed(
            self._flat[0],  # numpy's ddot
            self._packed,
            np.asarray(need, dtype=float),
            np.ascontiguousarray(context.released_orders, dtype=float),
            simulator.on_hand,
            simulator.inbound,
            float(min(context.purchase_budget, context.purchase_headroom)),
            requests,
            transfers,
        )
        return transfers

    def request_numpy(self, simulator: Simulator, need: np.ndarray, requests: np.ndarray) -> np.ndarray:
        """:meth:`request` in numpy (where the compiled loop's arithmetic would differ, and in tests)."""
        n = self.network
        integer = n.integer_units
        context = simulator.context()
        released = context.released_orders  # (P, S) released from approval: ship now, take capacity first
        # Whole-unit SKUs: whole units only, so a fraction never books a lane's fixed cost.
        remaining = whole_units(np.where(np.isfinite(need), np.maximum(need, 0.0), 0.0), integer[None, :])
        lane_units = n.purchase_lane_capacity - released.sum(axis=1)  # (P,) units left
        lane_value = np.zeros(len(n.purchase_location))  # (P,) value ordered so far (variable part)
        lane_used = np.zeros(len(n.purchase_location), dtype=bool)
        supplier_left = n.supplier_capacity.copy()
        if self.any_supplier_limit:
            np.add.at(supplier_left, n.purchase_supplier, -released)
        transfer_units = n.transfer_capacity.astype(float).copy()  # (X,)
        stock_left = np.maximum(simulator.on_hand - n.reserve_quantity, 0.0)  # (D, S) unreserved, for transfers
        room = np.full(len(n.locations), np.inf)
        if self.any_storage_limit:
            room = n.location_capacity - (simulator.on_hand + simulator.inbound).sum(axis=1)
            np.add.at(room, n.purchase_location, -released.sum(axis=1))
        money = min(context.purchase_budget, context.purchase_headroom)
        transfers = np.zeros((len(n.transfer_source), n.n_skus))
        for options, constants, kinds in zip(self.options, self._constants, self._kinds, strict=True):
            proposals = [remaining[d, skus] for _, _, d, skus, _ in options]
            # Per-SKU shared limits: a source DC's stock, a supplier's capacity.
            for limit, kind in ((stock_left, "transfer"), (supplier_left, "order")):
                if kind not in kinds or (kind == "order" and not self.any_supplier_limit):
                    continue  # no option of this kind in this rank: nothing to limit
                asked = np.zeros_like(limit)
                for (k, _, _, skus, _), (_, _, _, owner), q in zip(options, constants, proposals, strict=True):
                    if k == kind:
                        asked[owner, skus] += q
                factor = np.where(asked > limit, np.maximum(limit, 0.0) / np.maximum(asked, 1e-300), 1.0)
                for i, ((k, _, _, skus, _), (whole, _, _, owner)) in enumerate(zip(options, constants, strict=True)):
                    if k == kind:
                        proposals[i] = whole(proposals[i] * factor[owner, skus])
            # Per-lane limits: capacity in units, the approval limit in value.
            for i, ((kind, lane, _, _, _), (whole, unit_cost, _, _)) in enumerate(zip(options, constants, strict=True)):
                q = proposals[i]
                total = q.sum()
                if total <= 0:
                    continue
                if kind == "transfer":
                    cap = transfer_units[lane]
                else:
                    cap = lane_units[lane]
                    value = float(q @ unit_cost)
                    allowed = self.approval_limit - n.purchase_fixed_cost[lane] - lane_value[lane]
                    if value > allowed:
                        q = whole(q * max(allowed, 0.0) / value)
                        total = q.sum()
                if total > cap:
                    q = whole(q * max(cap, 0.0) / total)
                proposals[i] = q
            # Storage room at each destination.
            if self.any_storage_limit:
                into = np.zeros(len(n.locations))
                for (_, _, d, _, _), q in zip(options, proposals, strict=True):
                    into[d] += q.sum()
                for i, ((_, _, d, _, _), (whole, _, _, _)) in enumerate(zip(options, constants, strict=True)):
                    if into[d] > room[d]:
                        proposals[i] = whole(proposals[i] * max(room[d], 0.0) / into[d])
            # Budget and cash headroom over all purchase orders (fixed costs of newly used lanes first).
            if np.isfinite(money) and "order" in kinds:
                value, fixed = 0.0, 0.0
                for (kind, lane, _, _, _), (_, unit_cost, _, _), q in zip(options, constants, proposals, strict=True):
                    if kind == "order" and q.sum() > 0:
                        value += float(q @ unit_cost)
                        fixed += 0.0 if lane_used[lane] else n.purchase_fixed_cost[lane]
                if value + fixed > money:
                    factor = max(money - fixed, 0.0) / value if value > 0 else 0.0
                    for i, ((kind, _, _, _, _), (whole, _, _, _)) in enumerate(zip(options, constants, strict=True)):
                        if kind == "order":
                            proposals[i] = whole(proposals[i] * factor)
            # Minimum order quantities: a smaller order is left to the next lane.
            for i, ((kind, _, _, _, _), (_, _, moq_floor, _)) in enumerate(zip(options, constants, strict=True)):
                if kind == "order":
                    proposals[i] = np.where(proposals[i] < moq_floor, 0.0, proposals[i])
            # Commit this rank.
            for (kind, lane, d, skus, positions), (_, unit_cost, _, owner), q in zip(
                options, constants, proposals, strict=True
            ):
                total = q.sum()
                if total <= 0:
                    continue
                requests[positions] += q
                remaining[d, skus] -= q
                room[d] -= total
                if kind == "transfer":
                    transfer_units[lane] -= total
                    stock_left[owner, skus] -= q
                    transfers[lane, skus] += q
                else:
                    value = float(q @ unit_cost)
                    money -= value + (0.0 if lane_used[lane] else n.purchase_fixed_cost[lane])
                    lane_used[lane] = True
                    lane_units[lane] -= total
                    lane_value[lane] += value
                    if self.any_supplier_limit:
                        supplier_left[owner, skus] -= q
        return transfers


_EXACT: list[int] = []


def _exact_arithmetic() -> int:
    """:func:`invalloc.sim.kernels.sourcing.exact_arithmetic`, probed once per process."""
    if not _EXACT:
        _EXACT.append(sourcing_kernels.exact_arithmetic())
    return _EXACT[0]


class _Rounding:
    """:func:`whole_units` for one fixed set of SKUs: the same numbers, without ``np.where``
    when the SKUs are all whole-unit or all fractional."""

    def __init__(self, integer: np.ndarray) -> None:
        self.integer = integer
        self.mode = "all" if integer.all() else "none" if not integer.any() else "mixed"

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if self.mode == "all":
            return np.floor(values + 1e-9)
        if self.mode == "none":
            return values
        return np.where(self.integer, np.floor(values + 1e-9), values)
