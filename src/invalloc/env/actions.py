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

``anchored`` (a bounded correction to a tuned rule)
    The same dimensions as ``compact`` (per SKU, per DC with an inbound lane, per channel
    where a DC serves several), but they correct a rule-based policy (the *anchor*, e.g. the
    tuned ``proportional`` rule) instead of a fixed cover: each DC × SKU's order-up-to level
    is the anchor's level × ANCHOR_RANGE^(a_sku + a_dc), and each channel's weight in the
    anchor's allocation is × ANCHOR_RANGE^a_channel. The anchor then sources the need as it
    always does (cheapest lane first, lots within the approval limit, held orders counted,
    budget and cash; :class:`~invalloc.sim.planning.Sourcing`) and stops ordering when it
    would. So **action 0 is the anchor exactly**, a policy network that outputs 0 starts from
    the tuned rule, and whatever it learns is an improvement on it or a visible loss.

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
from numba import njit
from numba.experimental import structref

from invalloc.sim.compiled_calls import BoundKernel
from invalloc.sim.kernels.packing import PackedArraysType, borrowed, owning, packable
from invalloc.sim.planning import PlanningView
from invalloc.sim.rule_policy import RuleBasedPolicy
from invalloc.sim.simulator import Simulator

#: Periods of demand a DC × SKU covers beyond its lead time at action 0 (compact mapping).
BASE_COVER = 1.5
#: The compact target spans BASE_COVER × [1/RANGE, RANGE].
RANGE = 4.0
#: The anchored mapping scales the anchor's levels and channel weights by [1/ANCHOR_RANGE, ANCHOR_RANGE].
ANCHOR_RANGE = 2.0
#: Action modes.
ACTION_MODES = ("compact", "anchored", "raw")
_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)


@structref.register
class _CompactMappingType(PackedArraysType):
    pass


class CompactMapping(structref.StructRefProxy):
    """What the compact mapping's one compiled call reads (see :data:`COMPACT_FIELDS`):
    the mapping's constants, its scratch and the simulator's state arrays, borrowed."""


COMPACT_FIELDS = (
    "sku_dimension",  # (D, S) int64: the action dimension acting on each cell's SKU (len(action): none)
    "location_dimension",  # (D, S) int64: … on each cell's DC
    "clipped",  # (n,) scratch: the action clipped, float64
    "exponent",  # (D, S) scratch: each cell's exponent (_compact_exponents)
    "doubled_weight",  # (k,) scratch: 2 × each decided channel's dimension
    "scale",  # (D, S) scratch: RANGE ** exponent
    "weight_of_decided",  # (k,) scratch: exp(doubled_weight)
    "demand_through",  # (H + 1, D, S) expected demand through each DC
    "tier_forecast",  # (H + 1, T, S) expected demand per tier
    "periods",  # the episode's periods (a whole number)
    "cover",  # (D, S) periods: lead time + BASE_COVER
    "channels_decided",  # (k,) int64
    "n_channels",  # channels (a whole number)
    "on_hand",  # (D, S) the simulator's
    "inbound",  # (D, S) the simulator's
    "backlog",  # (T, S) the simulator's
    "transit_units",  # (R, D, S) the simulator's
    "backlog_location",  # (T,) int64: the tier's backlog DC, -1 none
    "routed_cells",  # (m,) int64: flat D × S cells with an inbound lane
    "routed_decisions",  # (m,) int64: their order or transfer decision
    "tier_channel",  # (T,) int64
    "allocation_locations",  # (L,) int64: the allocation lanes' DC
    "allocation_channels",  # (L,) int64: … and channel
    "allocation_positions",  # (L, S) int64: their decisions
    "even_share",  # (L,) the share of a lane where no lane of its DC has any weight
)

structref.define_proxy(CompactMapping, _CompactMappingType, list(COMPACT_FIELDS))


# Packed by a compiled function kept in numba's cache (the proxy's own constructor compiles
# afresh in every process).
@njit(cache=True, nogil=True)
def _new_compact_mapping(*fields):
    return CompactMapping(*borrowed(fields))


class ActionMapper:
    """Maps actions (n,) in [-1, 1] to requests (n_decisions,) in units (see the module docstring)."""

    def __init__(self, simulator: Simulator, mode: str = "compact", anchor: RuleBasedPolicy | None = None) -> None:
        if mode not in ACTION_MODES:
            raise ValueError(f"action_mode={mode!r}: choose {', '.join(map(repr, ACTION_MODES))}")
        if (mode == "anchored") != (anchor is not None):
            raise ValueError(
                "action_mode='anchored' needs an anchor (a rule-based policy, e.g. proportional@tuned)"
                if anchor is None
                else f"anchor: only action_mode='anchored' takes one (got action_mode={mode!r})"
            )
        self.mode = mode
        self.simulator = simulator
        n = simulator.network
        self.anchor = anchor
        if anchor is not None:
            anchor.reset(n)
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
        self._weight_start = len(self.sku_columns) + len(self.location_rows)  # first channel-weight dimension
        level = "cover" if mode == "compact" else "level_scale"
        self.names = (
            [f"{level}/sku/{n.skus[s]}" for s in self.sku_columns]
            + [f"{level}/location/{n.locations[d]}" for d in self.location_rows]
            + [f"allocation_weight/{n.channels[c]}" for c in self.channels_decided]
        )
        self._cover = view.route.lead_time + BASE_COVER  # (D, S)
        # Index of the action dimension acting on each DC × SKU cell (D, S); the action's
        # length (one past its end) where none does.
        size = len(self.names)
        self._sku_dimension = np.full((len(n.locations), n.n_skus), size)
        self._sku_dimension[:, self.sku_columns] = np.arange(len(self.sku_columns))
        self._location_dimension = np.full((len(n.locations), n.n_skus), size)
        location_index = len(self.sku_columns) + np.arange(len(self.location_rows))
        self._location_dimension[self.location_rows, :] = location_index[:, None]
        # For the compiled mapping: each tier's backlog DC (-1: none), tier → channel, and the
        # allocation lanes' DC, channel, decision positions (L, S) and even share (L,).
        self._backlog_location = np.full(len(n.tiers), -1, dtype=np.int64)
        rows, tiers = np.nonzero(view.backlog_to_location)
        self._backlog_location[tiers] = rows
        self._tier_channel = np.ascontiguousarray(n.tier_channel, dtype=np.int64)
        self._n_channels = len(n.channels)
        self._channels_decided = np.ascontiguousarray(self.channels_decided, dtype=np.int64)
        self._n_decisions = n.n_decisions
        # The simulator's expected demand per tier and SKU (H + 1, T, S), as sim.demand_forecast().
        self._tier_forecast = simulator._tier_forecast
        self._routed_cells = view.routed_cells
        self._routed_decisions = view.routed_decisions
        self._allocation_locations = np.ascontiguousarray(view.allocation_locations, dtype=np.int64)
        self._allocation_channels = np.ascontiguousarray(view.allocation_channels, dtype=np.int64)
        self._allocation_positions = np.ascontiguousarray(
            view.allocation_positions.reshape(len(view.allocation_locations), n.n_skus), dtype=np.int64
        )
        self._even_share = view.lane_even_share
        self._shape = (len(self.names),)
        if mode == "compact":
            # The mapping's constants, its scratch and the simulator's state, for its one
            # compiled call (the simulator keeps its state arrays for its life).
            cells = (len(n.locations), n.n_skus)
            fields = {
                "sku_dimension": self._sku_dimension,
                "location_dimension": self._location_dimension,
                "clipped": np.empty(len(self.names)),
                "exponent": np.empty(cells),
                "doubled_weight": np.empty(len(self.channels_decided)),
                "scale": np.empty(cells),
                "weight_of_decided": np.empty(len(self.channels_decided)),
                "demand_through": self._demand_through,
                "tier_forecast": self._tier_forecast,
                "periods": simulator.periods,
                "cover": self._cover,
                "channels_decided": self._channels_decided,
                "n_channels": self._n_channels,
                "on_hand": simulator.on_hand,
                "inbound": simulator.inbound,
                "backlog": simulator.backlog,
                "transit_units": simulator.transit_units,
                "backlog_location": self._backlog_location,
                "routed_cells": self._routed_cells,
                "routed_decisions": self._routed_decisions,
                "tier_channel": self._tier_channel,
                "allocation_locations": self._allocation_locations,
                "allocation_channels": self._allocation_channels,
                "allocation_positions": self._allocation_positions,
                "even_share": self._even_share,
            }
            packed = packable(COMPACT_FIELDS, fields)
            self._packed = owning(_new_compact_mapping(*packed), packed)
            #: The compact mapping of a float64 and of a float32 action, called straight.
            self._bound_mapping = tuple(BoundKernel(globals(), "_compact_mapping") for _ in range(2))

    @property
    def size(self) -> int:
        return len(self.names)

    def requests(self, action: np.ndarray) -> np.ndarray:
        """Requested quantities (n_decisions,) in units for a valid action (size,), read as float64."""
        if self.mode == "raw":
            sim = self.simulator
            demand = self._demand_through[min(sim.period, sim.periods)]  # (D, S), as view.demand_through(sim)
            return self._raw(action, demand, np.zeros(self.network.n_decisions))
        if self.mode == "anchored":
            return self._anchored(np.asarray(action, dtype=np.float64))
        if action.__class__ is not np.ndarray or action.dtype is not _FLOAT64 or not action.flags.c_contiguous:
            action = np.ascontiguousarray(action, dtype=np.float64)  # the compiled pass's one signature
        # A valid action is in [-1, 1]: the compiled pass's clip leaves it as it is.
        requests = np.zeros(self._n_decisions)
        if not _compact_mapping(self._packed, action, self.simulator.period, requests):
            raise ValueError("action has NaN or infinite entries")
        return requests

    def clipped_compact_requests(self, action: np.ndarray) -> np.ndarray | None:
        """:meth:`requests` of a compact-mode action as a vector env passes it (a C-contiguous
        float32 or float64 array of the action's size), clipped to [-1, 1] in the same compiled
        pass that maps it; None if it is not such an array or has a NaN or infinite entry (the
        caller then checks it and reports what is wrong)."""
        if not is_vector_env_action(action, self._shape):
            return None
        # A new array (the caller may keep it), made here: a new array handed back from
        # compiled code costs numba an unpickling on every call.
        requests = np.zeros(self._n_decisions)
        # Straight at the compiled code for this action's dtype (read-only arrays, rare, through
        # numba's dispatcher: a different type).
        mapping = self._bound_mapping[action.dtype is _FLOAT32] if action.flags.writeable else _compact_mapping
        if not mapping(self._packed, action, self.simulator.period, requests):
            return None
        return requests

    def _anchored(self, action: np.ndarray) -> np.ndarray:
        """The anchor's requests with its levels and channel weights scaled by the action."""
        if not action.any():
            return self.anchor.act(self.simulator)
        exponent = _cell_exponent(action, self._sku_dimension, self._location_dimension)
        weight = np.ones(len(self.network.channels))
        weight[self.channels_decided] = ANCHOR_RANGE ** action[self._weight_start :]
        return self.anchor.act(self.simulator, target_scale=ANCHOR_RANGE ** (2.0 * exponent), channel_weight=weight)

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


@njit(cache=True)
def _cell_exponent(action, sku_dimension, location_dimension):
    """Per DC × SKU (D, S): the mean of the cell's SKU and location action dimensions, an index
    of ``len(action)`` standing for a missing dimension (value 0)."""
    size = action.shape[0]
    n_loc, n_sku = sku_dimension.shape
    out = np.empty((n_loc, n_sku))
    for d in range(n_loc):
        for s in range(n_sku):
            i = sku_dimension[d, s]
            j = location_dimension[d, s]
            out[d, s] = ((action[i] if i < size else 0.0) + (action[j] if j < size else 0.0)) / 2
    return out


@njit(cache=True)
def _compact_exponents(action, sku_dimension, location_dimension, exponent, doubled_weight):
    """The compact mapping's exponents: :func:`_cell_exponent` into ``exponent`` (D, S), and
    2 × each channel dimension (the action's last ``len(doubled_weight)`` entries) into
    ``doubled_weight``, the values numpy's ``RANGE ** exponent`` and ``exp(doubled_weight)``
    turn into the targets' scale and the channels' weights."""
    size = action.shape[0]
    n_loc, n_sku = sku_dimension.shape
    for d in range(n_loc):
        for s in range(n_sku):
            i = sku_dimension[d, s]
            j = location_dimension[d, s]
            exponent[d, s] = ((action[i] if i < size else 0.0) + (action[j] if j < size else 0.0)) / 2
    start = size - doubled_weight.shape[0]
    for k in range(doubled_weight.shape[0]):
        doubled_weight[k] = 2.0 * action[start + k]


def is_vector_env_action(action, shape: tuple[int]) -> bool:
    """Whether ``action`` is what vector envs pass: a C-contiguous float32 or float64 array of
    ``shape`` (what :func:`cast_and_clip` takes)."""
    return (
        action.__class__ is np.ndarray
        and (action.dtype is _FLOAT32 or action.dtype is _FLOAT64)
        and action.shape == shape
        and action.flags.c_contiguous
    )


@njit(cache=True)
def cast_and_clip(action, out):
    """Write the action (n,) as float64 clipped to [-1, 1] (``np.clip``'s values) to ``out``;
    False, with ``out`` partly written, when an entry is NaN or infinite.

    Into the caller's array: returning a new one costs numba an unpickling on every call."""
    for i in range(action.shape[0]):
        value = np.float64(action[i])
        if not np.isfinite(value):
            return False
        out[i] = -1.0 if value < -1.0 else (1.0 if value > 1.0 else value)
    return True


@njit(cache=True, error_model="numpy", nogil=True)
def _compact_mapping(m, action, period, requests):
    """The compact mapping of ``action`` (n,) at ``period``, added to ``requests``
    (n_decisions,) of zeros, in one pass over the packed :class:`CompactMapping` ``m``: the
    action cast and clipped (:func:`cast_and_clip`), its exponents (:func:`_compact_exponents`),
    the cells' scale RANGE ** exponent and the decided channels' weights exp(2·a_channel),
    then :func:`_compact_requests`. False (nothing written to ``requests``) at a NaN or
    infinite entry."""
    if not cast_and_clip(action, m.clipped):
        return False
    exponent, doubled_weight, scale, weight = m.exponent, m.doubled_weight, m.scale, m.weight_of_decided
    _compact_exponents(m.clipped, m.sku_dimension, m.location_dimension, exponent, doubled_weight)
    for d in range(exponent.shape[0]):
        for s in range(exponent.shape[1]):
            scale[d, s] = RANGE ** exponent[d, s]
    for k in range(doubled_weight.shape[0]):
        weight[k] = np.exp(doubled_weight[k])
    _compact_requests(
        requests,
        m.demand_through,
        m.tier_forecast,
        period,
        int(m.periods),
        m.cover,
        scale,
        weight,
        m.channels_decided,
        int(m.n_channels),
        m.on_hand,
        m.inbound,
        m.backlog,
        m.transit_units,
        m.backlog_location,
        m.routed_cells,
        m.routed_decisions,
        m.tier_channel,
        m.allocation_locations,
        m.allocation_channels,
        m.allocation_positions,
        m.even_share,
    )
    return True


@njit(cache=True, error_model="numpy", nogil=True)
def _compact_requests(
    requests,
    demand_through,
    tier_forecast,
    period,
    periods,
    cover,
    scale,
    weight_of_decided,
    channels_decided,
    n_channels,
    on_hand,
    inbound,
    backlog,
    transit_units,
    backlog_location,
    routed_cells,
    routed_decisions,
    tier_channel,
    allocation_locations,
    allocation_channels,
    allocation_positions,
    even_share,
):
    """Order-up-to and allocation requests of the compact mapping at ``period``, added to
    ``requests`` (n_decisions,) of zeros.

    ``demand_through`` (H + 1, D, S) and ``tier_forecast`` (H + 1, T, S) are the expected
    demand through each DC and per tier for every period (row min(period, periods), as the
    planning view reads them), ``transit_units`` the simulator's arrival ring (R, D, S);
    channel ``channels_decided[k]`` weighs ``weight_of_decided[k]``, the other ``n_channels`` 1.
    Each routed DC × SKU orders ``max(demand × cover × scale − position, 0)`` where the
    position is on hand + inbound − the backlog counted against the DC
    (:meth:`PlanningView.order_up_to`); each DC's available stock (on hand + arriving now)
    is split over its allocation lanes in proportion to the channel's need (forecast +
    backlog) × the channel's weight, evenly where no lane has any weight, in whole units
    rounded down (:meth:`PlanningView.allocate_by_weight`).
    """
    row = min(period, periods)
    demand = demand_through[row]
    forecast = tier_forecast[row]
    arriving = transit_units[period % transit_units.shape[0]]
    n_loc, n_sku = on_hand.shape
    n_tier = backlog.shape[0]
    held = np.zeros((n_loc, n_sku))
    for t in range(n_tier):
        d = backlog_location[t]
        if d >= 0:
            for s in range(n_sku):
                held[d, s] += backlog[t, s]
    for j in range(routed_cells.shape[0]):
        d = routed_cells[j] // n_sku
        s = routed_cells[j] % n_sku
        position = on_hand[d, s] + inbound[d, s] - held[d, s]
        target = demand[d, s] * cover[d, s] * scale[d, s]
        requests[routed_decisions[j]] += max(target - position, 0.0)
    n_lanes = allocation_locations.shape[0]
    if n_lanes == 0:
        return
    channel_weight = np.ones(n_channels)
    for k in range(channels_decided.shape[0]):
        channel_weight[channels_decided[k]] = weight_of_decided[k]
    need = np.zeros((n_channels, n_sku))
    for t in range(n_tier):
        c = tier_channel[t]
        for s in range(n_sku):
            need[c, s] += forecast[t, s] + backlog[t, s]
    weights = np.empty((n_lanes, n_sku))
    total = np.zeros((n_loc, n_sku))
    for lane in range(n_lanes):
        c = allocation_channels[lane]
        d = allocation_locations[lane]
        for s in range(n_sku):
            weights[lane, s] = need[c, s] * channel_weight[c]
            total[d, s] += weights[lane, s]
    for lane in range(n_lanes):
        d = allocation_locations[lane]
        for s in range(n_sku):
            lane_total = total[d, s]
            share = weights[lane, s] / max(lane_total, 1e-300) if lane_total > 0 else even_share[lane]
            requests[allocation_positions[lane, s]] = np.floor(share * (on_hand[d, s] + arriving[d, s]))
