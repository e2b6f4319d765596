"""The rule table's features computed from the simulator's state (:class:`FeatureSet`).

What each feature means (names, units, versions) is in :mod:`invalloc.env.feature_definitions`,
which needs no simulator and is re-exported here. The features live in the environment layer
because they are also an observation: an agent trained with ``observation="features"``
(:class:`~invalloc.env.observations.FeatureObservation`) sees the state exactly as a rule table
extracted from it will.
"""

from __future__ import annotations

import numpy as np

from invalloc.env.feature_definitions import (  # noqa: F401 - re-exported for existing imports
    FEATURE_SET_VERSION,
    FEATURE_SET_VERSIONS,
    NO_DEMAND_COVER_DAYS,
    Feature,
    identifier,
)
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
        self._group_masks = np.zeros((len(groups), network.n_skus))  # (G, S) 1 where the SKU is in the group
        for g, skus in enumerate(groups.values()):
            self._group_masks[g, skus] = 1.0
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
        self.names = [f.name for f in features]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"feature names collide after conversion to identifiers: {self.names}")

    @property
    def size(self) -> int:
        return len(self.features)

    def compute(self, simulator: Simulator) -> np.ndarray:
        """Feature values (size,) float64 at the simulator's current decision point."""
        n = self.network
        view = self.view
        per_day = 1.0 / self.period_days
        position = view.positions(simulator)  # (D, S) units
        demand = view.demand_through(simulator)  # (D, S) units per period
        group_position = position @ self._group_masks.T  # (D, G)
        group_demand = demand @ self._group_masks.T * per_day  # (D, G) units per day
        cover = np.divide(
            group_position,
            group_demand,
            out=np.full_like(group_position, NO_DEMAND_COVER_DAYS),
            where=group_demand > 1e-12,
        )
        cover = np.minimum(cover, NO_DEMAND_COVER_DAYS)
        headroom = (
            simulator.purchase_headroom()
            if simulator.cash_rule_active
            else simulator.cash + n.scenario.finance.credit_line
        )
        if n.scenario.episode.unmet_demand == "lost_sales":
            report = simulator.last_report
            owed = report.short.sum(axis=1) if report is not None else np.zeros(len(n.tiers))
        else:
            owed = simulator.backlog.sum(axis=1)
        tier_demand = simulator.demand_forecast().sum(axis=1) * per_day  # (T,) units per day
        backlog_days = np.divide(owed, tier_demand, out=np.zeros_like(owed), where=tier_demand > 1e-12)
        if self._average_of is not simulator:
            # The episode's average expected demand per period (units), once per simulator.
            expected = simulator.demand_model.expected[: simulator.periods]  # (H, C, S)
            self._average_of, self._average = simulator, float(expected.sum(axis=(1, 2)).mean())
        average = self._average
        now = float(simulator.demand_forecast().sum())
        season = now / average if average > 0 else 1.0
        remaining = (simulator.periods - simulator.period) * self.period_days
        if not self.pipeline_periods:
            return np.concatenate((cover.ravel(), [headroom], backlog_days, [season, remaining]))
        dc_demand = demand.sum(axis=1) * per_day  # (D,) units per day
        arriving = simulator.pipeline(self.pipeline_periods).sum(axis=2).T  # (D, K) units
        inbound = np.divide(
            arriving,
            dc_demand[:, None],
            out=np.where(arriving > 0, NO_DEMAND_COVER_DAYS, 0.0),
            where=dc_demand[:, None] > 1e-12,
        )
        inbound = np.minimum(inbound, NO_DEMAND_COVER_DAYS)
        return np.concatenate((cover.ravel(), [headroom], backlog_days, [season, remaining], inbound.ravel()))
