"""How an action in [-1, 1]ⁿ becomes requested quantities for the feasibility layer.

Two mappings:

``compact`` (default, learnable on ``retail``)
    One number per SKU, one per DC with an inbound lane, and — when some DC serves several
    channels — one per channel. Each DC × SKU orders up to

        target = expected demand through the DC × (lead time + 1.5) × 4^((a_sku + a_dc) / 2)

    i.e. between a quarter and four times a 1.5-period cover, on its first inbound lane
    (purchase order or transfer). A DC's available stock is split over the channels it
    serves in proportion to expected demand (+ backlog) × exp(2·a_channel): a softmax over
    channels weighted by need.

``raw`` (for research)
    One number per decision variable: an order or transfer requests
    ``(a + 1) / 2 × cap`` units, where ``cap`` is four times the demand through the DC over
    its lead time + 1 (or the lane's capacity if smaller); an allocation requests
    ``(a + 1) / 2`` of the DC's available stock.

Either way the result is only a *request*: the simulator's feasibility layer turns it into
the nearest quantities that satisfy every rule.
"""

from __future__ import annotations

import numpy as np

from invalloc.sim.planning import PlanningView
from invalloc.sim.simulator import Simulator

#: Periods of demand a DC × SKU covers beyond its lead time at action 0 (compact mapping).
BASE_COVER = 1.5
#: The compact target spans BASE_COVER × [1/RANGE, RANGE].
RANGE = 4.0


class ActionMapper:
    """Maps actions (n,) in [-1, 1] to requests (n_decisions,) in units (see the module docstring)."""

    def __init__(self, simulator: Simulator, mode: str = "compact") -> None:
        if mode not in ("compact", "raw"):
            raise ValueError(f"action_mode={mode!r}: choose 'compact' or 'raw'")
        self.mode = mode
        self.simulator = simulator
        n = simulator.network
        self.network = n
        self.view = PlanningView(n)
        view = self.view
        # Expected demand through each DC per period t = 0 … horizon (H + 1, D, S), by the
        # expression PlanningView.demand_through evaluates at t (so the same bits), once.
        self._demand_through = np.stack(
            [view.through @ simulator._tier_forecast[t] for t in range(simulator.periods + 1)]
        )
        if mode == "raw":
            self.names = list(n.decision_names)
            # Per replenishment decision: destination DC, SKU, mean lead time, lane capacity.
            rows, skus, leads, caps, positions = [], [], [], [], []
            for kind, lane, columns, span in n.decision_blocks:
                if kind == "allocate":
                    continue
                if kind == "order":
                    d, sampler = n.purchase_location[lane], n.purchase_lead_time[lane]
                    capacity = n.purchase_lane_capacity[lane]
                else:
                    d, sampler = n.transfer_destination[lane], n.transfer_lead_time[lane]
                    capacity = n.transfer_capacity[lane]
                rows += [d] * len(columns)
                skus += list(columns)
                leads += [sampler.mean] * len(columns)
                caps += [capacity] * len(columns)
                positions += list(range(span.start, span.stop))
            self._raw_rows, self._raw_skus = np.array(rows, dtype=int), np.array(skus, dtype=int)
            self._raw_leads, self._raw_caps = np.array(leads), np.array(caps)
            self._raw_positions = np.array(positions, dtype=int)
            return
        routed = view.route.decision_index >= 0
        self.sku_columns = np.flatnonzero(routed.any(axis=0))
        self.location_rows = np.flatnonzero(routed.any(axis=1))
        self.channels_decided = np.unique(view.allocation_channels)
        self.names = (
            [f"cover/sku/{n.skus[s]}" for s in self.sku_columns]
            + [f"cover/location/{n.locations[d]}" for d in self.location_rows]
            + [f"allocation_weight/{n.channels[c]}" for c in self.channels_decided]
        )
        self._cover = view.route.lead_time + BASE_COVER  # (D, S)
        # Index of the action dimension acting on each DC × SKU cell (D, S); the action's
        # length (one past its end) where none does.
        size = len(self.names)
        self._padded = np.zeros(size + 1)
        self._sku_dimension = np.full((len(n.locations), n.n_skus), size)
        self._sku_dimension[:, self.sku_columns] = np.arange(len(self.sku_columns))
        self._location_dimension = np.full((len(n.locations), n.n_skus), size)
        location_index = len(self.sku_columns) + np.arange(len(self.location_rows))
        self._location_dimension[self.location_rows, :] = location_index[:, None]

    @property
    def size(self) -> int:
        return len(self.names)

    def requests(self, action: np.ndarray) -> np.ndarray:
        """Requested quantities (n_decisions,) in units for a valid action (size,)."""
        sim = self.simulator
        view = self.view
        requests = np.zeros(self.network.n_decisions)
        demand = self._demand_through[min(sim.period, sim.periods)]  # (D, S), as view.demand_through(sim)
        if self.mode == "raw":
            return self._raw(action, demand, requests)
        k_sku, k_loc = len(self.sku_columns), len(self.location_rows)
        padded = self._padded  # the last entry stands for "no such dimension" and stays 0
        padded[:-1] = action
        exponent = (padded[self._sku_dimension] + padded[self._location_dimension]) / 2
        target = demand * self._cover * RANGE**exponent
        view.order_up_to(sim, requests, target)
        if len(self.channels_decided):
            weight = np.ones(len(self.network.channels))
            weight[self.channels_decided] = np.exp(2.0 * action[k_sku + k_loc :])
            need = view.channel_need(sim)
            view.allocate_by_weight(sim, requests, need * weight[view.allocation_channels][:, None])
        return requests

    def _raw(self, action: np.ndarray, demand: np.ndarray, requests: np.ndarray) -> np.ndarray:
        view = self.view
        share = (action + 1.0) / 2.0
        cap = np.minimum(RANGE * demand[self._raw_rows, self._raw_skus] * (self._raw_leads + 1.0), self._raw_caps)
        requests[self._raw_positions] = share[self._raw_positions] * cap
        if len(view.allocation_locations):
            sim = self.simulator
            available = (sim.on_hand + sim.arriving(sim.period))[view.allocation_locations]
            positions = view.allocation_positions
            requests[positions] = np.floor(share[positions] * available)
        return requests
