"""Rule-based policies planners use today: base stock, (s, S), fixed, and allocation rules.

Each rule-based policy has two parts: a **replenishment rule** that decides how much each
DC × SKU asks for on its first inbound lane offering the SKU (a purchase order or a
transfer), and an **allocation rule** that splits a DC's available stock over the
channels it serves. All quantities are in units.
"""

from __future__ import annotations

import numpy as np

from invalloc.sim.network import Network
from invalloc.sim.planning import PlanningView
from invalloc.sim.policy import PolicyError
from invalloc.sim.simulator import Simulator


class RuleBasedPolicy:
    """Replenishment rule + allocation rule (see the module docstring).

    :param replenishment: ``"base_stock"``, ``"echelon_base_stock"``, ``"s_S"`` or ``"none"``.
    :param allocation: ``"proportional"``, ``"priority"`` or ``"fixed_split"``.
    :param level: order-up-to level per DC × SKU (units; scalar for all).
    :param levels: echelon order-up-to levels, one per DC, listed downstream first.
    :param cover: when no level is given, level = expected demand × (lead time + cover) (periods).
    :param reorder_point: ``s`` of (s, S), units; None: demand × (lead time + ``reorder_cover``).
    :param order_up_to: ``S`` of (s, S), units; None: demand × (lead time + ``cover``).
    :param reorder_cover: periods of demand beyond the lead time at which (s, S) reorders.
    :param split: channel shares for ``fixed_split`` (one per channel, in scenario order; None: equal).
    :param stop: last period in which each DC orders, downstream first (one value for all),
        or ``"auto"``: the last period whose order can still reach a customer before the
        horizon ends. None orders to the end. A finite episode rewards not buying stock that
        can no longer be sold.
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
        stop: list[float] | str | None = None,
        reorder_cover: float = 0.5,
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
        self.stop = stop
        self.reorder_cover = reorder_cover

    def reset(self, network: Network, seed: int | None = None) -> None:
        self.network = network
        view = self.view = PlanningView(network)
        if self.levels is not None and len(self.levels) not in (1, len(network.locations)):
            raise PolicyError(
                f"levels: {len(self.levels)} given, the scenario has {len(network.locations)} DCs "
                f"({', '.join(network.locations[d] for d in view.downstream)}, downstream first)"
            )
        if self.split is not None and len(self.split) != len(network.channels):
            raise PolicyError(f"split: {len(self.split)} shares given for {len(network.channels)} channels")
        if isinstance(self.stop, list) and len(self.stop) not in (1, len(network.locations)):
            raise PolicyError(f"stop: {len(self.stop)} periods given, the scenario has {len(network.locations)} DCs")
        self.fixed_targets = self._fixed_targets()
        self.last_order = self._last_order()
        self.cover_periods = view.route.lead_time + self.cover  # (D, S)
        tier_priority = np.full(len(network.channels), np.inf)
        np.minimum.at(tier_priority, network.tier_channel, network.tier_priority)
        self.allocation_priority_order = np.argsort(tier_priority[view.allocation_channels], kind="stable")

    # -- replenishment ----------------------------------------------------------------
    def _fixed_targets(self) -> np.ndarray | None:
        """Order-up-to levels per DC × SKU (D, S) when they are parameters, else None."""
        n = self.network
        if self.levels is not None:
            by_order = np.broadcast_to(np.asarray(self.levels, dtype=float), (len(n.locations),))
            targets = np.zeros((len(n.locations), n.n_skus))
            for rank, d in enumerate(self.view.downstream):
                targets[d] = by_order[rank]
            return targets
        if self.replenishment == "s_S" and self.order_up_to is not None:
            return np.full((len(n.locations), n.n_skus), float(self.order_up_to))
        if self.level is not None:
            return np.full((len(n.locations), n.n_skus), float(self.level))
        return None

    def _last_order(self) -> np.ndarray | None:
        """(D, 1) last ordering period per DC, or None (order to the end)."""
        if self.stop is None:
            return None
        n = self.network
        if self.stop == "auto":
            return self.view.last_useful_order(n.scenario.episode.horizon)[:, None]
        by_order = np.broadcast_to(np.asarray(self.stop, dtype=float), (len(n.locations),))
        last = np.zeros(len(n.locations))
        for rank, d in enumerate(self.view.downstream):
            last[d] = by_order[rank]
        return last[:, None]

    def _replenish(self, simulator: Simulator, requests: np.ndarray) -> None:
        if self.replenishment == "none":
            return
        view = self.view
        target = self.fixed_targets
        if target is None:
            target = view.demand_through(simulator) * self.cover_periods
        if self.last_order is not None:
            target = np.where(simulator.period > self.last_order, -np.inf, target)
        echelon = self.levels is not None
        if self.replenishment == "s_S":
            # Order up to S only where the position has fallen to s or below.
            position = view.positions(simulator, echelon)
            reorder_point = self.reorder_point
            if reorder_point is None:
                reorder_point = view.demand_through(simulator) * (view.route.lead_time + self.reorder_cover)
            target = np.where(position <= reorder_point, target, -np.inf)
        view.order_up_to(simulator, requests, target, echelon)

    # -- allocation -------------------------------------------------------------------
    def _allocate(self, simulator: Simulator, requests: np.ndarray) -> None:
        """Split each DC's available stock (on hand + arriving now) over the channels it serves."""
        view = self.view
        if not len(view.allocation_channels):
            return
        need = view.channel_need(simulator)  # (L, S)
        if self.allocation == "priority":
            # Channels in order of their best tier; what no channel needs now stays unallocated.
            given = np.zeros_like(need)
            left = simulator.on_hand + simulator.arriving(simulator.period)
            for lane in self.allocation_priority_order:
                d = view.allocation_locations[lane]
                given[lane] = np.minimum(need[lane], left[d])
                left[d] -= given[lane]
            requests[view.allocation_positions] = given
            return
        if self.allocation == "fixed_split":
            split = self.split if self.split is not None else [1.0] * len(self.network.channels)
            shares = np.asarray(split, dtype=float)[view.allocation_channels]
            weights = np.repeat(shares[:, None], self.network.n_skus, axis=1)
        else:
            weights = need
        view.allocate_by_weight(simulator, requests, weights)

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
        from invalloc.baselines.actions import read_actions

        self.actions = read_actions(self.path, network.decision_names)

    def act(self, simulator: Simulator) -> np.ndarray:
        if simulator.period not in self.actions:
            raise PolicyError(f"{self.path}: no row for period {simulator.period}")
        return self.actions[simulator.period].copy()
