"""Rule-based policies planners use today: base stock, (s, S), fixed, and allocation rules.

Each rule-based policy has two parts: a **replenishment rule** that decides how much each
DC × SKU asks for on its first inbound lane offering the SKU (a purchase order or a
transfer), and an **allocation rule** that splits a DC's available stock over the
channels it serves. All quantities are in units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from invalloc.sim.network import Network
from invalloc.sim.policy import PolicyError
from invalloc.sim.simulator import Simulator


def _downstream_order(network: Network) -> list[int]:
    """DC indices, nearest to customers first (distance in transfer hops to a sales lane)."""
    n_loc = len(network.locations)
    distance = np.full(n_loc, np.inf)
    distance[np.unique(network.sales_location)] = 0
    for _ in range(n_loc):
        for source, destination in zip(network.transfer_source, network.transfer_destination, strict=True):
            distance[source] = min(distance[source], distance[destination] + 1)
    return sorted(range(n_loc), key=lambda d: (distance[d], d))


def _echelons(network: Network) -> np.ndarray:
    """(D, D) bool: row d marks d and every DC downstream of it through transfer lanes."""
    n_loc = len(network.locations)
    member = np.eye(n_loc, dtype=bool)
    for _ in range(n_loc):
        for source, destination in zip(network.transfer_source, network.transfer_destination, strict=True):
            member[source] |= member[destination]
    return member


@dataclass
class _Replenishment:
    """Where each DC × SKU's request goes: the decision index of its first inbound lane."""

    decision_index: np.ndarray  # (D, S) int, -1 where no inbound lane offers the SKU
    lead_time: np.ndarray  # (D, S) mean lead time of that lane, periods

    @classmethod
    def build(cls, network: Network) -> _Replenishment:
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


def _through_matrix(network: Network) -> np.ndarray:
    """(D, C) share of each channel's demand that flows through each DC.

    A channel's demand is shared equally by the DCs serving it; a DC supplying others by
    transfer carries their demand too (shared equally among their sources).
    """
    n_loc, n_channels = len(network.locations), len(network.channels)
    through = np.zeros((n_loc, n_channels))
    servers = np.bincount(network.sales_channel, minlength=n_channels)
    for d, c in zip(network.sales_location, network.sales_channel, strict=True):
        through[d, c] += 1.0 / servers[c]
    for d in _downstream_order(network):
        sources = network.transfer_source[network.transfer_destination == d]
        for source in sources:
            through[source] += through[d] / len(sources)
    return through


def _through_tiers(network: Network) -> np.ndarray:
    """(D, T): share of each tier's demand flowing through each DC."""
    tier_to_channel = np.zeros((len(network.channels), len(network.tiers)))
    tier_to_channel[network.tier_channel, np.arange(len(network.tiers))] = 1.0
    return _through_matrix(network) @ tier_to_channel


class RuleBasedPolicy:
    """Replenishment rule + allocation rule (see the module docstring).

    :param replenishment: ``"base_stock"``, ``"echelon_base_stock"``, ``"s_S"`` or ``"none"``.
    :param allocation: ``"proportional"``, ``"priority"`` or ``"fixed_split"``.
    :param level: order-up-to level per DC × SKU (units; scalar for all).
    :param levels: echelon order-up-to levels, one per DC, listed downstream first.
    :param cover: when no level is given, level = expected demand × (lead time + cover) (periods).
    :param reorder_point: ``s`` of (s, S), units.
    :param order_up_to: ``S`` of (s, S), units.
    :param split: channel shares for ``fixed_split`` (one per channel, in scenario order).
    """

    def __init__(
        self,
        name: str,
        replenishment: str = "base_stock",
        allocation: str = "proportional",
        level: float | None = None,
        levels: list[float] | None = None,
        cover: float = 1.5,
        reorder_point: float | None = None,
        order_up_to: float | None = None,
        split: list[float] | None = None,
    ) -> None:
        self.name = name
        self.replenishment = replenishment
        self.allocation = allocation
        self.level = level
        self.levels = levels
        self.cover = cover
        self.reorder_point = reorder_point
        self.order_up_to = order_up_to
        self.split = split

    def reset(self, network: Network, seed: int | None = None) -> None:
        self.network = network
        self.route = _Replenishment.build(network)
        self.echelon = _echelons(network).astype(float)
        self.downstream = _downstream_order(network)
        if self.levels is not None and len(self.levels) not in (1, len(network.locations)):
            raise PolicyError(
                f"levels: {len(self.levels)} given, the scenario has {len(network.locations)} DCs "
                f"({', '.join(network.locations[d] for d in self.downstream)}, downstream first)"
            )
        if self.split is not None and len(self.split) != len(network.channels):
            raise PolicyError(f"split: {len(self.split)} shares given for {len(network.channels)} channels")
        self.through = _through_tiers(network)  # (D, T)
        self.fixed_targets = self._fixed_targets()
        self.cover_periods = self.route.lead_time + self.cover  # (D, S)
        routed = self.route.decision_index >= 0
        self.routed_cells = np.flatnonzero(routed.ravel())  # DC × SKU cells with an inbound lane
        self.routed_decisions = self.route.decision_index.ravel()[self.routed_cells]
        # Sales lanes with an allocation decision (L,), their DC and channel, and the decision
        # index of each SKU (L, S).
        blocks = [(lane, span) for kind, lane, _, span in network.decision_blocks if kind == "allocate"]
        self.allocation_lanes = np.array([lane for lane, _ in blocks], dtype=int)
        self.allocation_positions = np.array([np.arange(span.start, span.stop) for _, span in blocks], dtype=int)
        self.allocation_locations = network.sales_location[self.allocation_lanes]
        self.allocation_channels = network.sales_channel[self.allocation_lanes]
        self.allocation_incidence = np.zeros((len(network.locations), len(blocks)))  # (D, L)
        self.allocation_incidence[self.allocation_locations, np.arange(len(blocks))] = 1.0
        self.allocation_lanes_per_location = self.allocation_incidence.sum(axis=1)
        # Customer backlog counts against the first DC serving the channel.
        first_server = np.full(len(network.channels), -1)
        for d, c in zip(network.sales_location[::-1], network.sales_channel[::-1], strict=True):
            first_server[c] = d
        # (D, T): 1 where a tier's backlog counts against a DC's position.
        self.backlog_to_location = np.zeros((len(network.locations), len(network.tiers)))
        self.backlog_to_location[first_server[network.tier_channel], np.arange(len(network.tiers))] = 1.0
        # (C, T): 1 where a tier belongs to a channel.
        self.tier_to_channel = np.zeros((len(network.channels), len(network.tiers)))
        self.tier_to_channel[network.tier_channel, np.arange(len(network.tiers))] = 1.0
        tier_priority = np.full(len(network.channels), np.inf)
        np.minimum.at(tier_priority, network.tier_channel, network.tier_priority)
        self.allocation_priority_order = np.argsort(tier_priority[self.allocation_channels], kind="stable")

    # -- replenishment ----------------------------------------------------------------
    def _fixed_targets(self) -> np.ndarray | None:
        """Order-up-to levels per DC × SKU (D, S) when they are parameters, else None."""
        n = self.network
        if self.levels is not None:
            by_order = np.broadcast_to(np.asarray(self.levels, dtype=float), (len(n.locations),))
            targets = np.zeros((len(n.locations), n.n_skus))
            for rank, d in enumerate(self.downstream):
                targets[d] = by_order[rank]
            return targets
        if self.replenishment == "s_S":
            return np.full((len(n.locations), n.n_skus), float(self.order_up_to))
        if self.level is not None:
            return np.full((len(n.locations), n.n_skus), float(self.level))
        return None

    def _targets(self, simulator: Simulator) -> np.ndarray:
        """Order-up-to level per DC × SKU (D, S), units: the parameters, or demand × cover."""
        if self.fixed_targets is not None:
            return self.fixed_targets
        return (self.through @ simulator.demand_forecast()) * self.cover_periods

    def _positions(self, simulator: Simulator) -> np.ndarray:
        """Inventory position per DC × SKU (D, S): on hand + inbound − customer backlog."""
        position = simulator.on_hand + simulator.inbound - self.backlog_to_location @ simulator.backlog
        if self.levels is not None:
            position = self.echelon @ position
        return position

    def _replenish(self, simulator: Simulator, requests: np.ndarray) -> None:
        if self.replenishment == "none":
            return
        position = self._positions(simulator)
        target = self._targets(simulator)
        order = np.maximum(target - position, 0.0)
        if self.replenishment == "s_S":
            order = np.where(position <= self.reorder_point, order, 0.0)
        requests[self.routed_decisions] += order.ravel()[self.routed_cells]

    # -- allocation -------------------------------------------------------------------
    def _allocate(self, simulator: Simulator, requests: np.ndarray) -> None:
        """Split each DC's available stock (on hand + arriving now) over the channels it serves."""
        if not len(self.allocation_lanes):
            return
        n = self.network
        locations, channels = self.allocation_locations, self.allocation_channels
        need = (self.tier_to_channel @ (simulator.demand_forecast() + simulator.backlog))[channels]  # (L, S)
        available = (simulator.on_hand + simulator.arriving(simulator.period))[locations]  # (L, S)
        if self.allocation == "priority":
            # Channels in order of their best tier; what no channel needs now stays unallocated.
            given = np.zeros_like(need)
            left = simulator.on_hand + simulator.arriving(simulator.period)
            for lane in self.allocation_priority_order:
                give = np.minimum(need[lane], left[locations[lane]])
                left[locations[lane]] -= give
                given[lane] = give
        else:
            if self.allocation == "fixed_split":
                weights = np.repeat(np.asarray(self.split, dtype=float)[channels][:, None], n.n_skus, axis=1)
            else:
                weights = need
            total = (self.allocation_incidence @ weights)[locations]  # (L, S) per DC
            per_lane = 1.0 / self.allocation_lanes_per_location[locations][:, None]
            shares = np.divide(weights, total, out=np.broadcast_to(per_lane, weights.shape).copy(), where=total > 0)
            given = np.floor(shares * available)
        requests[self.allocation_positions] = given

    def act(self, simulator: Simulator) -> np.ndarray:
        requests = np.zeros(self.network.n_decisions)
        self._replenish(simulator, requests)
        self._allocate(simulator, requests)
        return requests


class FixedPolicy:
    """The same requested quantities every period (one value, or one per decision)."""

    def __init__(self, quantities: list[float]) -> None:
        self.name = "fixed"
        self.quantities = quantities

    def reset(self, network: Network, seed: int | None = None) -> None:
        if len(self.quantities) not in (1, network.n_decisions):
            raise PolicyError(
                f"quantities: {len(self.quantities)} given, the scenario has {network.n_decisions} decisions "
                f"({', '.join(network.decision_names[:4])}{', …' if network.n_decisions > 4 else ''})"
            )
        self.vector = np.broadcast_to(np.asarray(self.quantities, dtype=float), (network.n_decisions,)).copy()

    def act(self, simulator: Simulator) -> np.ndarray:
        return self.vector.copy()


class ReplayPolicy:
    """Replays an actions CSV: a ``period`` column (from 0) and one column per decision, in units."""

    def __init__(self, path: str) -> None:
        self.name = "replay"
        self.path = path

    def reset(self, network: Network, seed: int | None = None) -> None:
        try:
            table = pd.read_csv(self.path)
        except FileNotFoundError:
            raise PolicyError(f"{self.path}: actions file not found") from None
        except Exception as error:
            raise PolicyError(f"{self.path}: not a readable CSV ({error})") from None
        missing = [c for c in ["period", *network.decision_names] if c not in table.columns]
        if missing:
            raise PolicyError(f"{self.path}: missing column(s) {', '.join(missing[:5])}")
        table = table.set_index("period").sort_index()
        self.actions = {int(p): row.to_numpy(dtype=float) for p, row in table[network.decision_names].iterrows()}

    def act(self, simulator: Simulator) -> np.ndarray:
        if simulator.period not in self.actions:
            raise PolicyError(f"{self.path}: no row for period {simulator.period}")
        return self.actions[simulator.period].copy()
