"""Network structure that replenishment and allocation rules share (policies and the env).

Everything here is computed once per network: where each DC × SKU replenishes from, which
DCs carry which tiers' demand, and the allocation decisions grouped by sales lane. Shapes
follow :mod:`invalloc.sim.network` (``L`` = sales lanes with an allocation decision).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
        self._even_share = 1.0 / np.maximum(self.allocation_lanes_per_location[self.allocation_locations], 1)[:, None]

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

    def positions(self, simulator: Simulator, echelon: bool = False) -> np.ndarray:
        """Inventory position per DC × SKU (D, S): on hand + inbound − customer backlog (units).

        With ``echelon``, each DC's position includes every DC downstream of it.
        """
        position = simulator.on_hand + simulator.inbound - self.backlog_to_location @ simulator.backlog
        return self.echelon @ position if echelon else position

    def demand_through(self, simulator: Simulator) -> np.ndarray:
        """Expected demand per period flowing through each DC (D, S), units."""
        return self.through @ simulator.demand_forecast()

    def order_up_to(
        self, simulator: Simulator, requests: np.ndarray, target: np.ndarray, echelon: bool = False
    ) -> None:
        """Add to ``requests`` (n_decisions,) what brings each DC × SKU's position up to ``target`` (D, S)."""
        order = np.maximum(target - self.positions(simulator, echelon), 0.0)
        requests[self.routed_decisions] += order.ravel()[self.routed_cells]

    def channel_need(self, simulator: Simulator) -> np.ndarray:
        """Expected demand plus backlog per allocation lane's channel (L, S), units."""
        need = self.tier_to_channel @ (simulator.demand_forecast() + simulator.backlog)
        return need[self.allocation_channels]

    def allocate_by_weight(self, simulator: Simulator, requests: np.ndarray, weights: np.ndarray) -> None:
        """Split each DC's available stock over its allocation lanes in proportion to ``weights`` (L, S)."""
        available = (simulator.on_hand + simulator.arriving(simulator.period))[self.allocation_locations]
        total = (self.allocation_incidence @ weights)[self.allocation_locations]
        # Where no lane of a DC has any weight, its lanes share evenly.
        shares = np.where(total > 0, weights / np.maximum(total, 1e-300), self._even_share)
        requests[self.allocation_positions] = np.floor(shares * available)
