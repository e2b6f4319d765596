"""Rule-based policies planners use today: base stock and (s, S) replenishment, and allocation rules.

Each rule-based policy has two parts: a **replenishment rule** that decides how much each
DC × SKU needs (order-up-to level − inventory position), and an **allocation rule** that
splits a DC's available stock over the channels it serves. All quantities are in units.

By default (``capped=True``) a rule is configured as a planner would configure it, so that
it requests only what can execute this period:

- the inventory position counts orders held for approval and backordered requests
  (:meth:`PlanningView.committed`), so held units are not ordered again;
- the need is sourced over the DC's inbound lanes cheapest landed cost first, within every
  deterministic limit of the feasibility layer — lane and supplier capacity, the upstream
  DC's stock on hand, storage room, the approval limit per lane (lots just under it), the
  purchase budget, the cash rule and minimum order quantities (:class:`Sourcing`);
- allocations split the stock actually left to sell (after this period's transfers out)
  and stay within each channel's maximum share.

``capped=False`` is the earlier, naive form: the whole need is requested on each DC × SKU's
first inbound lane, held orders are not counted, and the feasibility layer cuts or delays
what cannot execute (OR-Gym-style environments charge a penalty on the unshipped part).
"""

from __future__ import annotations

import numpy as np

from invalloc.sim.kernels import sourcing as planner_kernels
from invalloc.sim.network import Network
from invalloc.sim.planning import PeriodMemo, PlanningView, whole_units
from invalloc.sim.policy import PolicyError
from invalloc.sim.simulator import Simulator


class RuleBasedPolicy:
    """Replenishment rule + allocation rule (see the module docstring).

    :param replenishment: ``"base_stock"``, ``"s_S"`` or ``"none"``.
    :param allocation: ``"open"`` (each channel may take up to its maximum share of the DC's
        stock; customers are then served in tier priority order as demand arrives, with no
        rationing by forecast), ``"proportional"`` (stock split in proportion to each
        channel's expected demand + backlog), ``"priority"`` (channels in order of their best
        tier, each up to its expected demand + backlog) or ``"fixed_split"``.
    :param level: order-up-to level per DC × SKU (units; scalar for all).
    :param levels: echelon order-up-to levels, one per DC, listed downstream first.
    :param cover: when no level is given, level = expected demand × (lead time + cover)
        (periods): one value for every DC, or one per DC, downstream first.
    :param reorder_point: ``s`` of (s, S), units; None: demand × (lead time + ``reorder_cover``).
    :param order_up_to: ``S`` of (s, S), units; None: demand × (lead time + ``cover``).
    :param reorder_cover: periods of demand beyond the lead time at which (s, S) reorders.
    :param split: channel shares for ``fixed_split`` (one per channel, in scenario order; None: equal).
    :param stop: last period in which each DC orders, downstream first (one value for all),
        or ``"auto"``: the last period whose order can still reach a customer before the
        horizon ends. None orders to the end. A finite episode rewards not buying stock that
        can no longer be sold.
    :param stop_offset: periods added to every DC's ``"auto"`` stop (negative: stop earlier).
    :param capped: request only what can execute this period (see the module docstring);
        False: the naive, uncapped form.
    """

    def __init__(
        self,
        name: str,
        replenishment: str = "base_stock",
        allocation: str = "proportional",
        level: float | None = None,
        levels: list[float] | None = None,
        cover: float | list[float] = 1.5,
        reorder_point: float | None = None,
        order_up_to: float | None = None,
        split: list[float] | None = None,
        stop: list[float] | str | None = None,
        reorder_cover: float = 0.5,
        stop_offset: float = 0.0,
        capped: bool = True,
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
        self.stop_offset = stop_offset
        self.capped = capped

    def reset(self, network: Network, seed: int | None = None) -> None:
        self.network = network
        # The planning view depends on the network only: built once, reused every episode.
        view = getattr(self, "view", None)
        if view is None or view.network is not network:
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
        # Cover counts from the lead time of the lane the need goes to first.
        lead = view.sourcing.lead_time if self.capped else view.route.lead_time
        self.lead_time = lead
        cover_periods = lead + self._per_location(self.cover, "cover")[:, None]  # (D, S)
        # Demand through × cover periods, per simulator and period: kept from the last episode
        # while the planning view and the cover periods are the same (bit for bit).
        previous = getattr(self, "cover_periods", None)
        if (
            getattr(self, "_targets_view", None) is not view
            or previous is None
            or previous.shape != cover_periods.shape
            or previous.tobytes() != cover_periods.tobytes()
        ):
            self._demand_targets = PeriodMemo()
        self._targets_view = view
        self.cover_periods = cover_periods
        tier_priority = np.full(len(network.channels), np.inf)
        np.minimum.at(tier_priority, network.tier_channel, network.tier_priority)
        self.allocation_priority_order = np.argsort(tier_priority[view.allocation_channels], kind="stable")
        self._allocation_max_share = np.ascontiguousarray(
            network.channel_max_share[view.allocation_channels], dtype=float
        )
        self._open_factor = self._open_factors(None)  # without channel weights: once per reset

    def _per_location(self, values: float | list[float], key: str) -> np.ndarray:
        """(D,) one value per DC from one value or a list downstream first."""
        n = self.network
        listed = np.atleast_1d(np.asarray(values, dtype=float))
        if len(listed) not in (1, len(n.locations)):
            raise PolicyError(
                f"{key}: {len(listed)} values given, the scenario has {len(n.locations)} DCs "
                f"({', '.join(n.locations[d] for d in self.view.downstream)}, downstream first)"
            )
        by_order = np.broadcast_to(listed, (len(n.locations),))
        out = np.zeros(len(n.locations))
        for rank, d in enumerate(self.view.downstream):
            out[d] = by_order[rank]
        return out

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
            return self.view.last_useful_order(n.scenario.episode.horizon)[:, None] + self.stop_offset
        by_order = np.broadcast_to(np.asarray(self.stop, dtype=float), (len(n.locations),))
        last = np.zeros(len(n.locations))
        for rank, d in enumerate(self.view.downstream):
            last[d] = by_order[rank]
        return last[:, None]

    def _replenish(
        self,
        simulator: Simulator,
        requests: np.ndarray,
        target_scale: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Add the replenishment requests; return the transfers requested (X, S), or None (naive form).

        ``target_scale`` (D, S) multiplies the order-up-to levels (and (s, S)'s reorder points).
        """
        if self.replenishment == "none":
            return np.zeros((len(self.network.transfer_source), self.network.n_skus)) if self.capped else None
        view = self.view
        target = self.fixed_targets
        if target is None:
            targets = self._demand_targets.of(simulator)
            target = targets.get(simulator.period)
            if target is None:
                target = targets[simulator.period] = view.demand_through(simulator) * self.cover_periods
                target.flags.writeable = False
        if target_scale is not None:
            target = target * target_scale
        if self.last_order is not None:
            target = np.where(simulator.period > self.last_order, -np.inf, target)
        echelon = self.levels is not None
        if self.replenishment == "s_S" or echelon:
            position = view.positions(simulator, echelon, committed=self.capped)
            if self.replenishment == "s_S":
                # Order up to S only where the position has fallen to s or below.
                reorder_point = self.reorder_point
                if reorder_point is None:
                    reorder_point = view.demand_through(simulator) * (self.lead_time + self.reorder_cover)
                if target_scale is not None:
                    reorder_point = reorder_point * target_scale
                target = np.where(position <= reorder_point, target, -np.inf)
            need = np.maximum(target - position, 0.0)  # (D, S) units
        else:
            need = view.need(simulator, target, committed=self.capped)  # the same, compiled
        if not self.capped:
            requests[view.routed_decisions] += need.ravel()[view.routed_cells]
            return None
        return view.sourcing.request(simulator, need, requests)

    # -- allocation -------------------------------------------------------------------
    def _allocate(
        self,
        simulator: Simulator,
        requests: np.ndarray,
        transfers: np.ndarray | None,
        channel_weight: np.ndarray | None = None,
    ) -> None:
        """Split each DC's available stock over the channels it serves.

        Available stock is on hand + arriving now, less this period's transfers out when
        they are known (capped form); the capped form also keeps every lane within its
        channel's maximum share, so the feasibility layer has nothing to cut.
        ``channel_weight`` (C,) multiplies each channel's weight in the split (its share for
        ``open`` and ``fixed_split``, its need for ``proportional``, and for ``priority`` its need,
        so a weight above 1 reserves more for a channel served first).
        """
        view = self.view
        if not len(view.allocation_channels):
            return
        if self.allocation == "open" and transfers is not None:
            # The capped open split, compiled.
            planner_kernels.open_allocation(
                *self._lanes_and_stock(simulator, transfers),
                self._open_factor if channel_weight is None else self._open_factors(channel_weight),
                self.network.integer_units,
                view.allocation_positions,
                requests,
            )
            return
        if self.allocation in ("proportional", "fixed_split") and transfers is not None:
            self._capped_split_by_weight(simulator, requests, transfers, channel_weight)
            return
        if transfers is None:
            available = simulator.on_hand + simulator.arriving(simulator.period)
            caps = None
        else:
            available = view.available_to_customers(simulator, transfers)
            caps = view.channel_caps(available)
        positions = view.allocation_positions
        if self.allocation == "open":  # uncapped (the capped open split is compiled, above)
            factor = self._open_factors(channel_weight)[:, None]
            requests[positions] = np.floor(factor * available[view.allocation_locations])
            return
        if self.allocation == "priority":
            # Channels in order of their best tier; what no channel needs now stays unallocated.
            need = self._scaled_need(simulator, channel_weight)
            given = np.zeros_like(need)
            left = available.copy()
            for lane in self.allocation_priority_order:
                d = view.allocation_locations[lane]
                given[lane] = np.minimum(need[lane], left[d])
                if caps is not None:
                    given[lane] = np.minimum(given[lane], caps[lane])
                left[d] -= given[lane]
            requests[positions] = whole_units(given, self.network.integer_units[None, :]) if caps is not None else given
            return
        # Uncapped (the capped split by weight is _capped_split_by_weight).
        view.allocate_by_weight(simulator, requests, self._weights(simulator, channel_weight), available)

    def _open_factors(self, channel_weight: np.ndarray | None) -> np.ndarray:
        """The open split's factor per allocation lane (L,). No rationing by forecast: each lane
        may take its channel's maximum share (times its ``channel_weight`` where given) of its
        DC's stock; where the shares of a DC's lanes add up to more than 1, in proportion to them."""
        view = self.view
        share = self.network.channel_max_share[view.allocation_channels]
        if channel_weight is not None:
            share = share * channel_weight[view.allocation_channels]
        total = (view.allocation_incidence @ share)[view.allocation_locations]
        return np.ascontiguousarray(share / np.maximum(total, 1.0), dtype=float)

    def _lanes_and_stock(self, simulator: Simulator, transfers: np.ndarray) -> tuple[np.ndarray, ...]:
        """The compiled allocations' first arguments: on hand and arriving now (D, S), the
        transfers (X, S) leaving now and their source DCs, each allocation lane's DC and its
        channel's maximum share."""
        view = self.view
        return (
            simulator.on_hand,
            view.arriving_now(simulator),
            transfers,
            self.network.transfer_source,
            view.allocation_locations,
            self._allocation_max_share,
        )

    def _scaled_need(self, simulator: Simulator, channel_weight: np.ndarray | None) -> np.ndarray:
        """Each allocation lane's channel's need (L, S), units (``view.channel_need``), times its
        ``channel_weight`` where given."""
        view = self.view
        need = view.channel_need(simulator)
        if channel_weight is not None:
            need = need * channel_weight[view.allocation_channels][:, None]
        return need

    def _weights(self, simulator: Simulator, channel_weight: np.ndarray | None) -> np.ndarray:
        """Each allocation lane's weight in a split by weight (L, S): its channel's share of the
        ``fixed_split``, else (``proportional``) its channel's need (:meth:`_scaled_need`)."""
        if self.allocation != "fixed_split":
            return self._scaled_need(simulator, channel_weight)
        view = self.view
        split = self.split if self.split is not None else [1.0] * len(self.network.channels)
        shares = np.asarray(split, dtype=float)[view.allocation_channels]
        if channel_weight is not None:
            shares = shares * channel_weight[view.allocation_channels]
        return np.repeat(shares[:, None], self.network.n_skus, axis=1)

    def _capped_split_by_weight(
        self,
        simulator: Simulator,
        requests: np.ndarray,
        transfers: np.ndarray,
        channel_weight: np.ndarray | None,
    ) -> None:
        """The capped ``proportional`` and ``fixed_split`` allocations, compiled from the weights'
        totals on (the same numbers as ``view.allocate_by_weight`` on the stock available to
        customers, each lane then capped at ``view.channel_caps``)."""
        view = self.view
        weights = np.ascontiguousarray(self._weights(simulator, channel_weight), dtype=float)
        planner_kernels.weighted_allocation(
            *self._lanes_and_stock(simulator, transfers),
            self.network.integer_units,
            weights,
            np.ascontiguousarray((view.allocation_incidence @ weights)[view.allocation_locations]),
            view.lane_even_share,
            view.allocation_positions,
            requests,
        )

    def act(
        self,
        simulator: Simulator,
        target_scale: np.ndarray | None = None,
        channel_weight: np.ndarray | None = None,
    ) -> np.ndarray:
        """Requested quantities (n_decisions,) for this period.

        :param target_scale: (D, S) factors on the order-up-to levels; None: 1 (the rule as tuned).
        :param channel_weight: (C,) factors on each channel's weight in the allocation; None: 1.
            Both are how a learned policy anchored on this rule corrects it
            (:mod:`invalloc.env.actions`); the rule alone never sets them.
        """
        requests = np.zeros(self.network.n_decisions)
        transfers = self._replenish(simulator, requests, target_scale)
        self._allocate(simulator, requests, transfers, channel_weight)
        return requests
