"""Observation features of the allocation environment: named, scaled by scenario constants.

Every feature is divided by a constant of the scenario (never by running statistics), so the
same state always gives the same observation and typical values lie in about [-1, 1]:

- quantities (units) by ``4 ×`` the SKU's expected demand per period over all channels
  (at least 1 unit), i.e. "periods of demand / 4";
- money by the expected sales value of one period (or, where nothing is sold for money,
  the cost of buying, holding or missing a period's demand; at least 1 currency unit);
- fill rates are shares in [0, 1]; the season is sin/cos of the demand cycle.

Values are clipped to ``[-CLIP, CLIP]`` so that the observation always lies in its Box.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit
from numba.experimental import structref

from invalloc.env.features import FEATURE_SET_VERSION, FeatureSet
from invalloc.sim.compiled_calls import BoundKernel
from invalloc.sim.kernels.packing import PackedArraysType, borrowed, owning, packable
from invalloc.sim.simulator import PeriodReport, Simulator

#: Bound of every scaled feature (the observation Box is [-CLIP, CLIP]).
CLIP = 10.0
#: What the environment can show an agent: ``full`` (:class:`ObservationBuilder`, every
#: SKU's stock, pipeline, backlog, demand and forecast) or ``features`` (:class:`FeatureObservation`,
#: the rule table's named features).
OBSERVATION_KINDS = ("full", "features")


@structref.register
class _ObservationArraysType(PackedArraysType):
    pass


class ObservationArrays(structref.StructRefProxy):
    """What the observation's compiled pass reads besides the period's report (see
    :data:`OBSERVATION_FIELDS`): the builder's constants and totals to date and the
    simulator's state arrays, borrowed."""


OBSERVATION_FIELDS = (
    "tier_channel",  # (T,) int64
    "demand_to_date",  # (T,) units demanded this episode, per tier
    "served_to_date",  # (T,) units served out of new demand this episode, per tier
    "unit",  # (S,) the unit scale
    "on_hand",  # (D, S) the simulator's
    "transit_units",  # (R, D, S) the simulator's
    "backlog",  # (T, S) the simulator's
    "periods",  # the episode's periods (a whole number)
    "horizon",  # periods of pipeline shown (a whole number)
    "scaled_forecast",  # (H + 1, C × S)
    "calendar",  # (H + 1, 3)
    "clip",  # the bound of every feature
)

structref.define_proxy(ObservationArrays, _ObservationArraysType, list(OBSERVATION_FIELDS))


# Packed by a compiled function kept in numba's cache (the proxy's own constructor compiles
# afresh in every process).
@njit(cache=True, nogil=True)
def _new_observation_arrays(*fields):
    return ObservationArrays(*borrowed(fields))


class ObservationBuilder:
    """Builds the flat float32 observation of a simulator state (see :attr:`feature_names`)."""

    def __init__(self, simulator: Simulator) -> None:
        n = simulator.network
        self.simulator = simulator
        self.transit_horizon = max(n.max_lead_time, 1)
        expected = simulator.demand_model.expected  # (H + 1, C, S)
        per_sku = expected.mean(axis=0).sum(axis=0)  # (S,)
        self.unit_scale = np.maximum(4.0 * per_sku, 1.0)
        # Money per period: expected sales value, or — where nothing is sold for money, as in
        # the analytic cost-only cases — what a period's demand costs to buy, hold or miss.
        mean_demand = expected.mean(axis=0)  # (C, S)
        sales_value = float((mean_demand * n.price).sum())
        unit_costs = n.standard_cost + n.holding_cost.max(axis=0) + n.tier_penalty.max(initial=0.0)
        cost_value = float((mean_demand.sum(axis=0) * unit_costs).sum())
        self.money_scale = max(sales_value, cost_value, 1.0)
        seasons = [s.seasonality for s in n.scenario.demand.streams if s.seasonality is not None]
        self.season_period = seasons[0].period if seasons else 0
        self.season_phase = seasons[0].phase if seasons else 0.0
        names: list[str] = []
        for d in n.locations:
            names += [f"on_hand/{d}/{s}" for s in n.skus]
        for k in range(self.transit_horizon):
            for d in n.locations:
                names += [f"in_transit/t+{k}/{d}/{s}" for s in n.skus]
        for tier in n.tiers:
            names += [f"backlog/{tier}/{s}" for s in n.skus]
        for c in n.channels:
            names += [f"recent_demand/{c}/{s}" for s in n.skus]
        for c in n.channels:
            names += [f"forecast/{c}/{s}" for s in n.skus]
        names += [
            "cash_headroom_over_buffer",
            "credit_headroom",
            "payables_due_soon",
            "receivables_due_soon",
            "purchase_budget_left",
            "season_sin",
            "season_cos",
            "episode_progress",
        ]
        names += [f"fill_rate_to_date/{tier}" for tier in n.tiers]
        self.feature_names = names
        self._size = len(names)
        blocks = [
            len(n.locations) * n.n_skus,
            self.transit_horizon * len(n.locations) * n.n_skus,
            len(n.tiers) * n.n_skus,
            len(n.channels) * n.n_skus,
            len(n.channels) * n.n_skus,
            8,
            len(n.tiers),
        ]
        edges = np.cumsum([0, *blocks]).tolist()
        self._slices = list(zip(edges[:-1], edges[1:], strict=True))
        self.tier_to_channel = np.zeros((len(n.channels), len(n.tiers)))
        self.tier_to_channel[n.tier_channel, np.arange(len(n.tiers))] = 1.0
        self._tier_channel = np.ascontiguousarray(n.tier_channel, dtype=np.int64)
        self._recent_shape = (len(n.channels), n.n_skus)
        self._n_tiers = len(n.tiers)
        # What depends only on the period, computed once per period t = 0 … horizon by the
        # same expressions a step would evaluate (so the same bits): the scaled channel
        # forecast (H + 1, C × S) and season and progress features (H + 1, 3).
        periods = simulator.periods
        self._scaled_forecast = np.stack(
            [np.ravel(self.tier_to_channel @ simulator._tier_forecast[t] / self.unit_scale) for t in range(periods + 1)]
        )
        calendar = []
        for t in range(periods + 1):
            season = 2 * np.pi * (t + self.season_phase) / self.season_period if self.season_period else 0.0
            calendar.append((np.sin(season), np.cos(season), t / periods))
        self._calendar = np.array(calendar, dtype=float)
        # Constants of the money features: credit line, cash rule, payment window + 1, budget.
        self._credit_line = n.scenario.finance.credit_line
        self._cash_rule = simulator.cash_rule_active
        self._window = simulator.payment_window + 1
        budget = n.scenario.rules.purchase_budget_per_period
        self._budget_feature = (budget if budget is not None else CLIP * self.money_scale) / self.money_scale
        self._demand_to_date = np.zeros(len(n.tiers))
        self._served_to_date = np.zeros(len(n.tiers))
        # For the compiled pass of every step (the totals to date are zeroed in place at a reset;
        # the simulator keeps its state arrays for its life).
        fields = {
            "tier_channel": self._tier_channel,
            "demand_to_date": self._demand_to_date,
            "served_to_date": self._served_to_date,
            "unit": self.unit_scale,
            "on_hand": simulator.on_hand,
            "transit_units": simulator.transit_units,
            "backlog": simulator.backlog,
            "periods": periods,
            "horizon": self.transit_horizon,
            "scaled_forecast": self._scaled_forecast,
            "calendar": self._calendar,
            "clip": CLIP,
        }
        packed = packable(OBSERVATION_FIELDS, fields)
        self._packed = owning(_new_observation_arrays(*packed), packed)
        # Called every step, straight at the compiled code (unbound at each reset).
        self._bound_record_and_observe = BoundKernel(globals(), "_record_and_observe")
        self.reset()

    def reset(self) -> None:
        """Forget the episode's history (call after the simulator's reset)."""
        n = self.simulator.network
        self.recent_demand = np.zeros((len(n.channels), n.n_skus))
        self._demand_to_date[:] = 0.0
        self._served_to_date[:] = 0.0
        self._seen_period = 0
        self._bound_record_and_observe.unbind()

    def record(self, report: PeriodReport) -> tuple[np.ndarray, float]:
        """Take in a finished period: its demand becomes ``recent_demand``; fill rates accrue.

        Returns the period's fill rate per tier (T,; 1 without demand) and units short (the
        environment's KPIs), all from one compiled pass over the report.
        """
        self.recent_demand = np.empty(self._recent_shape)
        fill_rate = np.empty(self._n_tiers)
        short = _record_period(
            report.demand,
            report.served_new,
            report.short,
            self._tier_channel,
            self.recent_demand,
            self._demand_to_date,
            self._served_to_date,
            fill_rate,
        )
        self._seen_period = report.period + 1
        return fill_rate, short

    def catch_up(self) -> None:
        """Record the simulator's last period if it has not been recorded yet.

        Lets a policy that only sees the simulator at decision points (``Policy.act``)
        build the same observation as the environment, which records every step.
        """
        report = self.simulator.last_report
        if report is not None and report.period + 1 > self._seen_period:
            self.record(report)

    def observe(self) -> np.ndarray:
        """Observation (size,) float32 at the current decision point from the recorded history."""
        sim = self.simulator
        observation = np.empty(self._size, dtype=np.float32)
        # The fill rate to date (served ÷ demand, 1 without demand) is divided in the kernel.
        _fill_observation(
            observation,
            self.unit_scale,
            sim.on_hand,
            sim.transit_units,
            sim.period,
            sim.periods,
            self.transit_horizon,
            sim.backlog,
            self.recent_demand,
            self._scaled_forecast,
            self._calendar,
            *self._money_features(),
            self._served_to_date,
            self._demand_to_date,
            CLIP,
        )
        return observation

    @property
    def size(self) -> int:
        return self._size

    def record_and_observe(self, report: PeriodReport) -> tuple[np.ndarray, float, np.ndarray]:
        """:meth:`record` then :meth:`observe`, in one compiled pass: (the period's fill
        rate per tier (T,), units short, the observation (size,) float32)."""
        self.recent_demand = np.empty(self._recent_shape)
        fill_rate = np.empty(self._n_tiers)
        observation = np.empty(self._size, dtype=np.float32)
        short = self._bound_record_and_observe(
            self._packed,
            report.demand,
            report.served_new,
            report.short,
            self.recent_demand,
            fill_rate,
            observation,
            self.simulator.period,
            *self._money_features(),
        )
        self._seen_period = report.period + 1
        return fill_rate, short, observation

    def _money_features(self) -> tuple[float, float, float, float, float]:
        """The five money features, scaled: cash headroom over the buffer, credit headroom,
        payables and receivables due soon, purchase budget left."""
        sim = self.simulator
        money = self.money_scale
        credit_line = self._credit_line
        # Cash, the bills due within the window (payment window + 1), the headroom (remembered by
        # the simulator for the next decision point, which reads it again) and the customer
        # payments due within the window, in one compiled call.
        cash, payables, headroom, receivables = sim.money_outlook(self._window)
        credit_used = max(0.0, -cash)
        if not self._cash_rule:
            headroom = cash + credit_line
        return (
            headroom / money,
            (credit_line - credit_used) / money,
            payables / money,
            receivables / money,
            self._budget_feature,
        )


@njit(cache=True, error_model="numpy")
def _record_period(demand, served_new, short, tier_channel, recent_demand, demand_to_date, served_to_date, fill_rate):
    """One period's record: demand per channel and SKU (C, S) into ``recent_demand``; demand and
    units served per tier added to the totals to date; the period's fill rate per tier (T,;
    1 where a tier had no demand) into ``fill_rate``. Returns the units short, summed."""
    recent_demand[:] = 0.0
    n_tier, n_sku = demand.shape
    units_short = 0.0
    for t in range(n_tier):
        c = tier_channel[t]
        wanted = 0.0
        got = 0.0
        for s in range(n_sku):
            recent_demand[c, s] += demand[t, s]
            wanted += demand[t, s]
            got += served_new[t, s]
            units_short += short[t, s]
        demand_to_date[t] += wanted
        served_to_date[t] += got
        fill_rate[t] = got / wanted if wanted > 0 else 1.0
    return units_short


@njit(cache=True, error_model="numpy", nogil=True)
def _record_and_observe(
    o,
    demand,
    served_new,
    short,
    recent_demand,
    fill_rate,
    observation,
    period,
    cash_headroom,
    credit_headroom,
    payables_due,
    receivables_due,
    budget_left,
):
    """:func:`_record_period` then :func:`_fill_observation` with the fill rates to date, the
    builder's arrays packed in ``o`` (:class:`ObservationArrays`)."""
    demand_to_date, served_to_date = o.demand_to_date, o.served_to_date
    units_short = _record_period(
        demand, served_new, short, o.tier_channel, recent_demand, demand_to_date, served_to_date, fill_rate
    )
    _fill_observation(
        observation,
        o.unit,
        o.on_hand,
        o.transit_units,
        period,
        int(o.periods),
        int(o.horizon),
        o.backlog,
        recent_demand,
        o.scaled_forecast,
        o.calendar,
        cash_headroom,
        credit_headroom,
        payables_due,
        receivables_due,
        budget_left,
        served_to_date,
        demand_to_date,
        o.clip,
    )
    return units_short


@njit(cache=True, error_model="numpy")
def _fill_observation(
    observation,
    unit,
    on_hand,
    transit_units,
    period,
    periods,
    horizon,
    backlog,
    recent_demand,
    scaled_forecast,
    calendar,
    cash_headroom,
    credit_headroom,
    payables_due,
    receivables_due,
    budget_left,
    fill_served,
    fill_demand,
    clip,
):
    """Write the features in :attr:`ObservationBuilder.feature_names` order, scaled and clipped.

    ``scaled_forecast`` (H + 1, C × S) and ``calendar`` (H + 1, 3) hold the features that
    depend only on the period, read at row min(period, periods); the five money features
    come scaled. Each value is scaled in float64 and rounded once to float32, as numpy's
    assignment of a float64 block into the float32 vector does; the pipeline holds arrivals
    in periods t … t + horizon − 1 (horizon ≤ ring length, so none is beyond the longest
    lead time).
    """
    i = 0
    n_loc, n_sku = on_hand.shape
    for d in range(n_loc):
        for s in range(n_sku):
            observation[i] = on_hand[d, s] / unit[s]
            i += 1
    ring = transit_units.shape[0]
    for k in range(horizon):
        slot = (period + k) % ring
        for d in range(n_loc):
            for s in range(n_sku):
                observation[i] = transit_units[slot, d, s] / unit[s]
                i += 1
    for t in range(backlog.shape[0]):
        for s in range(n_sku):
            observation[i] = backlog[t, s] / unit[s]
            i += 1
    for c in range(recent_demand.shape[0]):
        for s in range(n_sku):
            observation[i] = recent_demand[c, s] / unit[s]
            i += 1
    row = min(period, periods)
    for j in range(scaled_forecast.shape[1]):
        observation[i] = scaled_forecast[row, j]
        i += 1
    observation[i] = cash_headroom
    observation[i + 1] = credit_headroom
    observation[i + 2] = payables_due
    observation[i + 3] = receivables_due
    observation[i + 4] = budget_left
    i += 5
    for j in range(calendar.shape[1]):
        observation[i] = calendar[row, j]
        i += 1
    for j in range(fill_served.shape[0]):
        observation[i] = fill_served[j] / fill_demand[j] if fill_demand[j] > 0 else 1.0
        i += 1
    low = np.float32(-clip)
    high = np.float32(clip)
    for j in range(observation.shape[0]):
        value = observation[j]
        if value > high:
            observation[j] = high
        elif value < low:
            observation[j] = low


class FeatureObservation:
    """The rule table's features (:class:`~invalloc.env.features.FeatureSet`) as the observation.

    Float32 (size,) in business units (days, currency, ratios), not scaled: train with
    VecNormalize (``invalloc train`` does by default). An agent trained on it sees the state
    exactly as a rule table extracted from it does, so the table can follow it closely; on
    `retail` it has 28 inputs instead of the full observation's 615. The features need no
    history, so :meth:`reset` and :meth:`catch_up` have nothing to do.

    :param version: the feature set version (a trained agent keeps the one it was trained on).
    :param names: only these features, in this order (None: all). An anchored policy often
        needs only a few (the season, the days remaining, the cash headroom): the rule it
        corrects already reacts to each SKU's stock.
    :param time_basis: append this many horizon-phase features ``horizon_phase_<k>_of_<K>``:
        Gaussian bumps of the share of the episode elapsed (period / horizon), centred at
        (k + ½)/K with a width of 1/K. Each is near 1 in its part of the episode and near 0
        elsewhere, so a policy *linear* in its inputs can still act differently in the first
        weeks (a cash crunch while the first sales are not yet paid) than in the run-down to
        the horizon. A rule table needs none of them: it splits on ``days_remaining``.
    :raises ValueError: a name that is not a feature of the scenario, or one given twice.
    """

    def __init__(
        self,
        simulator: Simulator,
        version: str = FEATURE_SET_VERSION,
        names: Sequence[str] | None = None,
        time_basis: int = 0,
    ) -> None:
        self.simulator = simulator
        self.feature_set = FeatureSet(simulator.network, version)
        self._columns: np.ndarray | None = None
        self.feature_names = list(self.feature_set.names)
        if names is not None:
            available = self.feature_names
            unknown = [name for name in names if name not in available]
            if unknown or not names or len(set(names)) != len(names):
                problem = (
                    f"{', '.join(unknown)} not among the scenario's features ({', '.join(available)})"
                    if unknown
                    else "empty or a name given twice"
                )
                raise ValueError(f"features: {problem}")
            self._columns = np.array([available.index(name) for name in names], dtype=int)
            self.feature_names = list(names)
        if isinstance(time_basis, bool) or not isinstance(time_basis, int | np.integer) or not 0 <= time_basis <= 64:
            raise ValueError(f"time_basis={time_basis!r}: must be a whole number from 0 to 64")
        self.time_basis = int(time_basis)
        self._centres = (np.arange(self.time_basis) + 0.5) / max(self.time_basis, 1)
        self.feature_names += [f"horizon_phase_{k + 1}_of_{self.time_basis}" for k in range(self.time_basis)]

    @property
    def size(self) -> int:
        return len(self.feature_names)

    def reset(self) -> None:
        pass

    def catch_up(self) -> None:
        pass

    def observe(self) -> np.ndarray:
        """Observation (size,) float32 at the current decision point."""
        values = self.feature_set.compute(self.simulator)
        if self._columns is not None:
            values = values[self._columns]
        if self.time_basis:
            elapsed = self.simulator.period / self.simulator.periods
            phase = np.exp(-0.5 * ((elapsed - self._centres) * self.time_basis) ** 2)
            values = np.concatenate([values, phase])
        return values.astype(np.float32)


def observation_source(
    simulator: Simulator,
    kind: str,
    feature_set_version: str = FEATURE_SET_VERSION,
    features: Sequence[str] | None = None,
    time_basis: int = 0,
) -> ObservationBuilder | FeatureObservation:
    """The observation of ``kind`` (one of :data:`OBSERVATION_KINDS`) for ``simulator``;
    with ``features`` only: ``features`` keeps those named features and ``time_basis`` adds
    horizon-phase features (:class:`FeatureObservation`)."""
    if kind not in OBSERVATION_KINDS:
        raise ValueError(f"observation={kind!r}: choose one of {', '.join(OBSERVATION_KINDS)}")
    if kind == "full":
        if features is not None or time_basis:
            raise ValueError("features, time_basis: only observation='features' takes them")
        return ObservationBuilder(simulator)
    return FeatureObservation(simulator, feature_set_version, features, time_basis)
