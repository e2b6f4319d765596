"""The rule table's features computed from the simulator's state (:class:`FeatureSet`).

What each feature means (names, units, versions) is in :mod:`invalloc.env.feature_definitions`,
which needs no simulator and is re-exported here. The features live in the environment layer
because they are also an observation: an agent trained with ``observation="features"``
(:class:`~invalloc.env.observations.FeatureObservation`) sees the state exactly as a rule table
extracted from it will.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from invalloc.env.feature_definitions import (  # noqa: F401 - re-exported for existing imports
    FEATURE_SET_VERSION,
    FEATURE_SET_VERSIONS,
    NO_DEMAND_COVER_DAYS,
    Feature,
    identifier,
)
from invalloc.sim.kernels.sourcing import array_sum
from invalloc.sim.network import Network
from invalloc.sim.planning import PlanningView
from invalloc.sim.simulator import Simulator


def sku_groups(network: Network) -> dict[str, np.ndarray]:
    """SKU indices per group name (``perishable``, ``clearance``, ``regular``), empty groups left out."""
    perishable = network.shelf_life > 0
    clearance = ~perishable & (network.net_realisable_value < network.standard_cost)
    regular = ~perishable & ~clearance
    groups = {"perishable": perishable, "clearance": clearance, "regular": regular}
    return {name: np.flatnonzero(mask) for name, mask in groups.items() if mask.any()}


class FeatureSet:
    """Computes the features (:mod:`invalloc.env.feature_definitions`) of a simulator's state.

    :param version: which definitions, one of :data:`FEATURE_SET_VERSIONS`.
    :ivar features: the :class:`Feature` definitions in column order.
    :ivar names: their names.
    """

    def __init__(self, network: Network, version: str = FEATURE_SET_VERSION) -> None:
        if version not in FEATURE_SET_VERSIONS:
            known = ", ".join(FEATURE_SET_VERSIONS)
            raise ValueError(f"feature set version {version!r}: this evaluator computes versions {known}")
        self.version = version
        self.network = network
        self.view = PlanningView(network)
        self.period_days = float(network.scenario.episode.period_days)
        groups = sku_groups(network)
        # Group g's SKUs are _group_skus[_group_start[g]:_group_start[g + 1]], in SKU order.
        self._group_skus = np.concatenate([*groups.values(), np.zeros(0, dtype=np.int64)]).astype(np.int64)
        self._group_start = np.cumsum([0, *(len(skus) for skus in groups.values())]).astype(np.int64)
        self._no_owed = np.zeros((len(network.tiers), network.n_skus))  # lost sales, before any period
        self._no_backlog = np.zeros((len(network.locations), network.n_skus))  # nothing owed (never written)
        features: list[Feature] = []
        for dc in network.locations:
            for group in groups:
                features.append(
                    Feature(
                        f"days_of_cover_{identifier(dc)}_{group}",
                        "days",
                        f"inventory position of {group} SKUs at {dc} over their expected demand through it per day",
                    )
                )
        features.append(
            Feature(
                "cash_headroom_over_buffer",
                network.scenario.currency,
                "money a purchase may commit now: cash + unused credit − bills due − pending orders − treasury buffer",
            )
        )
        owed = "owed (backorders)" if network.scenario.episode.unmet_demand != "lost_sales" else "refused last period"
        for tier in network.tiers:
            features.append(
                Feature(
                    f"backlog_days_{identifier(tier)}",
                    "days",
                    f"units tier {tier} is {owed}, over its expected demand per day",
                )
            )
        features.append(
            Feature("season_demand_index", "ratio", "this period's expected demand over the episode's average")
        )
        features.append(Feature("days_remaining", "days", "days left in the episode"))
        #: Arrival periods of the inbound pipeline (version 2): 0 … longest lead time − 1.
        self.pipeline_periods = max(int(network.max_lead_time), 1) if version != "1" else 0
        for dc in network.locations:
            for k in range(self.pipeline_periods):
                features.append(
                    Feature(
                        f"inbound_days_{identifier(dc)}_arriving_in_{k}",
                        "days",
                        f"units in transit to {dc} arriving {k} period(s) from now (0 = this period), "
                        f"over its expected demand per day",
                    )
                )
        self.features = features
        self._average_of: Simulator | None = None
        self._average = 0.0
        self._season: dict[int, float] = {}
        self.names = [f.name for f in features]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"feature names collide after conversion to identifiers: {self.names}")

    @property
    def size(self) -> int:
        return len(self.features)

    def compute(self, simulator: Simulator) -> np.ndarray:
        """Feature values (size,) float64 at the simulator's current decision point.

        One compiled pass (:func:`_feature_values`) over the simulator's arrays. Every sum is
        taken in a fixed order, the same on every machine: a group's stock and demand SKU by
        SKU in SKU order, every other sum as numpy's ``sum`` takes it (pairwise).
        """
        n = self.network
        view = self.view
        if n.scenario.episode.unmet_demand == "lost_sales":
            report = simulator.last_report
            owed = report.short if report is not None else self._no_owed
        else:
            owed = simulator.backlog
        if self._average_of is not simulator:
            # The episode's average expected demand per period (units), once per simulator.
            expected = simulator.demand_model.expected[: simulator.periods]  # (H, C, S)
            self._average_of, self._average = simulator, float(expected.sum(axis=(1, 2)).mean())
            self._season = {}
        # This period's expected demand over the episode's average: the same for every call in
        # the period (numpy's sum of the forecast's (T, S) view, taken once).
        season = self._season.get(simulator.period)
        if season is None:
            now = float(simulator.demand_forecast().sum())
            season = self._season[simulator.period] = now / self._average if self._average > 0 else 1.0
        backlog_at = view.backlog_at(simulator)
        headroom = (
            simulator.purchase_headroom()
            if simulator.cash_rule_active
            else simulator.cash + n.scenario.finance.credit_line
        )
        values = np.empty(self.size)
        _feature_values(
            simulator.on_hand,
            simulator.inbound,
            # Read-only, it is the planning view's shared +0.0 (nothing owed): our own zeros
            # instead, so that the pass keeps one signature.
            backlog_at if backlog_at.flags.writeable else self._no_backlog,
            view.demand_through(simulator),
            simulator.demand_forecast(),
            owed,
            simulator.transit_units,
            simulator.period,
            self._group_start,
            self._group_skus,
            1.0 / self.period_days,
            float(headroom),
            season,
            (simulator.periods - simulator.period) * self.period_days,
            self.pipeline_periods,
            values,
        )
        return values


@njit(cache=True, error_model="numpy", nogil=True)
def _ordered_sum(row, skus, start, stop):
    """``row[skus[start]] + row[skus[start + 1]] + …``, left to right from +0.0."""
    total = 0.0
    for j in range(start, stop):
        total += row[skus[j]]
    return total


@njit(cache=True, error_model="numpy", nogil=True)
def _at_most_cover(days):
    """``np.minimum(days, NO_DEMAND_COVER_DAYS)`` of one value (NaN stays NaN)."""
    return NO_DEMAND_COVER_DAYS if days > NO_DEMAND_COVER_DAYS else days


@njit(cache=True, error_model="numpy", nogil=True)
def _feature_values(
    on_hand,
    inbound,
    backlog_at,
    demand,
    forecast,
    owed,
    transit_units,
    period,
    group_start,
    group_skus,
    per_day,
    headroom,
    season,
    remaining,
    pipeline_periods,
    out,
):
    """The features (:meth:`FeatureSet.compute`) into ``out``, in column order.

    ``on_hand``, ``inbound``, ``backlog_at`` (backlog owed against each DC) and ``demand``
    (expected demand through each DC per period) are (D, S) units; ``forecast`` and ``owed``
    (T, S) units; ``transit_units`` the ring of goods in transit (R, D, S) by arrival period
    modulo R; a group's SKUs are ``group_skus[group_start[g]:group_start[g + 1]]``.
    """
    n_loc, n_sku = on_hand.shape
    n_groups = group_start.shape[0] - 1
    position = np.empty(n_sku)
    column = 0
    # Days of cover per DC and SKU group: the group's inventory position over its expected
    # demand through the DC per day (NO_DEMAND_COVER_DAYS where it expects none).
    for d in range(n_loc):
        for s in range(n_sku):
            position[s] = on_hand[d, s] + inbound[d, s] - backlog_at[d, s]
        for g in range(n_groups):
            start, stop = group_start[g], group_start[g + 1]
            group_position = _ordered_sum(position, group_skus, start, stop)
            group_demand = _ordered_sum(demand[d], group_skus, start, stop) * per_day
            cover = group_position / group_demand if group_demand > 1e-12 else NO_DEMAND_COVER_DAYS
            out[column] = _at_most_cover(cover)
            column += 1
    out[column] = headroom
    column += 1
    # Backlog days per tier: units owed (or refused last period) over its expected demand per day.
    for t in range(forecast.shape[0]):
        tier_demand = array_sum(forecast[t], 0, n_sku) * per_day
        out[column] = array_sum(owed[t], 0, n_sku) / tier_demand if tier_demand > 1e-12 else 0.0
        column += 1
    out[column] = season
    out[column + 1] = remaining
    column += 2
    # The inbound pipeline by arrival period: units arriving k periods from now over the DC's
    # expected demand per day.
    ring = transit_units.shape[0]
    for d in range(n_loc):
        dc_demand = array_sum(demand[d], 0, n_sku) * per_day
        for k in range(pipeline_periods):
            arriving = array_sum(transit_units[(period + k) % ring, d], 0, n_sku) if k < ring else 0.0
            if dc_demand > 1e-12:
                out[column] = _at_most_cover(arriving / dc_demand)
            else:
                out[column] = NO_DEMAND_COVER_DAYS if arriving > 0 else 0.0
            column += 1
