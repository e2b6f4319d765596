"""Gymnasium environment: allocate and replenish stock under hard rules and a cash limit."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numba import njit

from invalloc.config.loader import load_scenario
from invalloc.env.actions import ActionMapper, cast_and_clip, is_vector_env_action
from invalloc.env.observations import CLIP, ObservationBuilder, observation_source
from invalloc.sim.feasibility import RULES
from invalloc.sim.network import compile_network
from invalloc.sim.rule_policy import RuleBasedPolicy
from invalloc.sim.simulator import PeriodReport, Simulator

#: What a step's ``info`` holds: everything (``full``) or what training reads (``lean``).
INFO_KINDS = ("full", "lean")


class AllocationEnv(gym.Env):
    """One supply-chain scenario as a Gymnasium environment; one step is one period.

    ## Action Space
    ``Box(-1, 1, (n,), float32)``. ``action_mode="compact"`` (default): one number per SKU
    and per DC scaling order-up-to targets, and one per channel weighting the allocation of
    DCs that serve several channels; ``"anchored"``: the same dimensions as a bounded
    correction (× 1/4 … 4, × 1/2 … 2 per SKU or DC alone) to the levels and channel weights of ``anchor``, a rule-based
    policy (:class:`~invalloc.sim.rule_policy.RuleBasedPolicy`), so that action 0 is that rule
    exactly; ``"raw"``: one number per decision variable. The
    mapping is documented in :mod:`invalloc.env.actions`; ``action_names`` lists the
    dimensions. Whatever the action, the requested quantities pass the simulator's
    feasibility layer, so the executed decision never breaks a governance rule, a capacity
    or the cash rule. A wrong-shaped, NaN or infinite action raises ``ValueError`` and
    leaves the state untouched.

    ## Observation Space
    ``Box(-10, 10, (m,), float32)`` with named features (``feature_names``):

    | features | unit before scaling | scaled by |
    |---|---|---|
    | ``on_hand/<dc>/<sku>`` | units | 4 × the SKU's expected demand per period |
    | ``in_transit/t+k/<dc>/<sku>`` (arriving k periods from now) | units | same |
    | ``backlog/<channel>/<tier>/<sku>`` | units | same |
    | ``recent_demand/<channel>/<sku>`` (last period) | units | same |
    | ``forecast/<channel>/<sku>`` (this period's expected demand) | units | same |
    | ``cash_headroom_over_buffer``, ``credit_headroom``, ``payables_due_soon``, | money | expected |
    | ``receivables_due_soon``, ``purchase_budget_left`` | | sales value per period |
    | ``season_sin``, ``season_cos`` | – | – |
    | ``episode_progress`` | – | period / horizon |
    | ``fill_rate_to_date/<channel>/<tier>`` | share | – |

    With ``observation="features"`` the observation is instead the rule table's named
    features (:mod:`invalloc.env.features`: days of cover per DC × SKU group, cash headroom,
    backlog days per tier, season, days remaining, inbound pipeline), ``Box(-inf, inf, (f,),
    float32)`` in business units: normalise them (VecNormalize) before a network sees them.
    ``features`` keeps only the named ones, in that order; ``time_basis=K`` appends K
    horizon-phase features (bumps of period / horizon, :class:`~invalloc.env.observations.FeatureObservation`).

    ## Rewards
    The period's reward on the scenario's reward basis (economic: sales − purchases −
    freight − holding − penalties − interest; accounting: accrual profit), undiscounted
    (the agent's algorithm discounts) or, with ``discount_rewards``, discounted to period 0
    at the scenario's rate, so that an episode's return is the scenario's objective (the
    total reward ``simulate`` and ``compare`` report; for learners without a ``gamma``, such
    as ARS), divided by ``reward_scale`` (default: the expected
    sales value of one period), minus ``projection_penalty`` × the projection distance
    (units the feasibility layer removed, scaled like on-hand).

    ## Starting State
    The scenario's opening stock, cash and empty pipelines at period 0; demand for the
    episode drawn from the seed (the same for every policy: common random numbers). A
    ``reset()`` without a seed (a vector env's automatic reset) also starts drawing the next
    such episode's demand on a background thread (the same demand as drawn at its reset).

    ## Episode End
    - Termination: never (no terminal state in the business).
    - Truncation: after the scenario's horizon (or ``periods``) of periods.

    ## Info
    ``projection_distance`` (units), ``bound_rules`` (list), ``constraint_cost`` (units
    removed per rule, an array in ``rule_names`` order), ``profit`` and ``reward_unscaled``
    (money, the period's), ``kpis`` (revenue, cash, inventory value, units short, rule
    interventions, each cost, and ``fill_rate_by_tier`` in ``tier_names`` order), ``period``.
    With ``info="lean"`` (what ``invalloc train`` uses) a step's info holds only ``period``
    and ``constraint_cost``, the same values; :meth:`period_info` gives the full info of the
    last step on demand. Observations, rewards and the episode are the same either way.

    ## Arguments
    ``scenario`` (shipped name or YAML path), ``config_overrides`` (nested mapping merged
    over the YAML), ``action_mode``, ``anchor`` (with ``anchored`` only), ``observation``
    (``full`` or ``features``), ``features``, ``time_basis``, ``discount_rewards``, ``reward_scale``,
    ``projection_penalty``, ``periods``, ``check_invariants`` (books checked every period;
    slower), ``info`` (``full`` or ``lean``), ``render_mode`` ("ansi"). A bad argument raises
    ``ValueError`` naming it (a ``ScenarioError``, also a ``ValueError``, for the scenario and ``config_overrides``):
    ``reward_scale`` must be a finite number > 0 or None, ``projection_penalty`` finite and
    ≥ 0, ``periods`` a whole number from 1 to 10,000; ``reset`` takes a ``seed`` ≥ 0 (not a
    bool) and ``step`` before ``reset`` raises ``RuntimeError``.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        scenario: str | Path = "retail",
        config_overrides: Mapping[str, Any] | None = None,
        action_mode: str = "compact",
        anchor: RuleBasedPolicy | None = None,
        observation: str = "full",
        features: list[str] | None = None,
        time_basis: int = 0,
        discount_rewards: bool = False,
        reward_scale: float | None = None,
        projection_penalty: float = 0.0,
        periods: int | None = None,
        check_invariants: bool = False,
        info: str = "full",
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}: only 'ansi' is supported")
        if config_overrides is not None and not isinstance(config_overrides, Mapping):
            raise ValueError(
                f"config_overrides={config_overrides!r:.40}: must be a mapping merged over the scenario "
                "(e.g. {'episode': {'horizon': 10}}) or None"
            )
        if reward_scale is not None and not _is_number(reward_scale, positive=True):
            raise ValueError(
                f"reward_scale={reward_scale!r:.40}: must be a finite number > 0 (money per reward unit) or None"
            )
        if not _is_number(projection_penalty):
            raise ValueError(f"projection_penalty={projection_penalty!r:.40}: must be a finite number ≥ 0")
        if not isinstance(check_invariants, bool | np.bool_):
            raise ValueError(f"check_invariants={check_invariants!r:.40}: must be true or false")
        if info not in INFO_KINDS:
            raise ValueError(f"info={info!r:.40}: choose one of {', '.join(INFO_KINDS)}")
        self.info_kind = info
        self._lean_info = info == "lean"
        self.render_mode = render_mode
        self.network = compile_network(load_scenario(scenario, config_overrides))
        self.simulator = Simulator(self.network, check_invariants=check_invariants, periods=periods)
        self.actions = ActionMapper(self.simulator, action_mode, anchor)
        self._compact = self.actions.mode == "compact"
        if not isinstance(discount_rewards, bool | np.bool_):
            raise ValueError(f"discount_rewards={discount_rewards!r:.40}: must be true or false")
        self.discount_rewards = bool(discount_rewards)
        source = observation_source(self.simulator, observation, features=features, time_basis=time_basis)
        # The full observation's builder also accrues the fill rates reported in ``info``, so
        # the env keeps one whatever the agent sees.
        self.observations = source if isinstance(source, ObservationBuilder) else ObservationBuilder(self.simulator)
        self._features = None if source is self.observations else source
        self.observation_kind = observation
        self.reward_scale = float(reward_scale) if reward_scale is not None else self.observations.money_scale
        self.projection_penalty = float(projection_penalty)
        self._needs_reset = True
        self._distance_scale = float(self.observations.unit_scale.mean())  # units, like on-hand features
        self.action_space = spaces.Box(-1.0, 1.0, (self.actions.size,), dtype=np.float32)
        self._action_shape = (self.actions.size,)
        self._checked_action = np.empty(self.actions.size)  # what _checked returns, rewritten each step
        if self._features is None:
            self.observation_space = spaces.Box(-CLIP, CLIP, (self.observations.size,), dtype=np.float32)
            self.feature_names = self.observations.feature_names
        else:
            self.observation_space = spaces.Box(-np.inf, np.inf, (self._features.size,), dtype=np.float32)
            self.feature_names = self._features.feature_names
        self.action_names = self.actions.names
        #: Names of the entries of ``info["constraint_cost"]`` and ``info["kpis"]["fill_rate_by_tier"]``.
        self.rule_names = list(RULES)
        self.tier_names = list(self.network.tiers)
        self._last_report: PeriodReport | None = None
        # The last step's fill rate per tier and units short, for :meth:`period_info`.
        self._last_record: tuple[np.ndarray, float] | None = None

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None and (
            isinstance(seed, bool | np.bool_) or not isinstance(seed, int | np.integer) or seed < 0
        ):
            raise ValueError(f"seed={seed!r:.40}: must be a whole number ≥ 0 or None")
        if options is not None and not isinstance(options, Mapping):
            raise ValueError(f"options={options!r:.40}: must be a mapping or None")
        super().reset(seed=seed)
        self._needs_reset = False
        # The simulator's own seed comes from the env's generator: reset(seed=s) fixes it.
        self.simulator.reset(seed=int(self.np_random.integers(2**63 - 1)))
        if seed is None and self.simulator.demands.ahead_pays():
            # Resets without a seed go on drawing from the generator: the next one's simulator
            # seed is known now, and its demand can be drawn while this episode runs.
            coming = copy.deepcopy(self.np_random)
            self.simulator.draw_ahead(int(coming.integers(2**63 - 1)))
        self.observations.reset()
        self._last_report = None
        self._last_record = None
        observation = self.observations.observe() if self._features is None else self._features.observe()
        return observation, {"period": 0}

    def step(self, action: np.ndarray):
        if self._needs_reset:
            raise RuntimeError("step() before reset(): call reset() to start an episode")
        if self.simulator.done:
            raise RuntimeError("the episode is over (truncated); call reset()")
        # A compact action as vector envs pass it: checked, clipped and mapped in one pass.
        requests = self.actions.clipped_compact_requests(action) if self._compact else None
        if requests is None:
            requests = self.actions.requests(self._checked(action))
        report = self.simulator.step(requests)
        self._last_report = report
        if self._features is None:
            fill_rate, units_short, observation = self.observations.record_and_observe(report)
        else:
            fill_rate, units_short = self.observations.record(report)
            observation = self._features.observe()
        self._last_record = (fill_rate, units_short)
        earned = report.reward if self.discount_rewards else report.undiscounted_reward
        reward = earned / self.reward_scale
        if self.projection_penalty or not self._lean_info:
            distance = report.decision.projection_distance
            # Without a penalty this subtracts 0.0: the same reward, bit for bit.
            reward -= self.projection_penalty * (distance / self._distance_scale)
        if self._lean_info:
            # What training reads (the callback's per-rule interventions); the rest on demand.
            info = _StepInfo(period=report.period, constraint_cost=report.decision.log[:, 1].copy())
        else:
            info = self._full_info(report, fill_rate, units_short, distance)
        return observation, float(reward), False, self.simulator.done, info

    def period_info(self) -> dict[str, Any]:
        """The full info (see Info in the class docstring) of the last step, whatever ``info``.

        Raises ``RuntimeError`` before the first step of an episode.
        """
        if self._last_report is None or self._last_record is None:
            raise RuntimeError("period_info() before the episode's first step: call step() first")
        report = self._last_report
        fill_rate, units_short = self._last_record
        return self._full_info(report, fill_rate.copy(), units_short, report.decision.projection_distance)

    def _full_info(
        self, report: PeriodReport, fill_rate: np.ndarray, units_short: float, distance: float
    ) -> dict[str, Any]:
        decision = report.decision
        # Arrays rather than nested dicts, and a dict whose deep copy is cheap: vector envs
        # deep-copy every info each step.
        return _StepInfo(
            period=report.period,
            projection_distance=distance,
            bound_rules=decision.bound_rules(),
            constraint_cost=decision.log[:, 1].copy(),
            profit=report.profit,
            reward_unscaled=report.undiscounted_reward,
            kpis=self._period_kpis(report, fill_rate, units_short),
        )

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        report = self._last_report
        if report is None:
            return (
                f"{self.network.scenario.name}: period 0 of {self.simulator.periods}, cash {self.simulator.cash:,.0f}\n"
            )
        fill = report.served_new.sum() / max(report.demand.sum(), 1e-12)
        bound = ", ".join(report.decision.bound_rules()) or "none"
        return (
            f"{self.network.scenario.name} period {report.period + 1}/{self.simulator.periods}: "
            f"profit {report.profit:,.0f}, reward {report.undiscounted_reward:,.0f}, fill {fill:.1%}, "
            f"on hand {report.on_hand.sum():,.0f} units, cash {report.cash:,.0f}, rules bound: {bound}\n"
        )

    # ------------------------------------------------------------------ helpers
    def _checked(self, action: np.ndarray) -> np.ndarray:
        """The action as float64 (n,) clipped to [-1, 1], or ValueError naming what is wrong with it."""
        # What vector envs pass (a float32 or float64 row of the right length): one compiled
        # pass casts, checks and clips it.
        if is_vector_env_action(action, self._action_shape):
            if cast_and_clip(action, self._checked_action):
                return self._checked_action
        if not (action.__class__ is np.ndarray and action.dtype.kind == "f") and np.iscomplexobj(action):
            raise ValueError("action has complex entries; expected real numbers in [-1, 1]")
        try:
            array = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"action is not an array of numbers ({error})") from None
        if array.shape != self._action_shape:
            raise ValueError(f"action has shape {array.shape}, expected {self.action_space.shape}")
        finite, low, high = _range_of(array)
        if not finite:
            bad = [self.action_names[i] for i in np.flatnonzero(~np.isfinite(array))[:3]]
            raise ValueError(f"action has NaN or infinite entries ({', '.join(bad)})")
        return array if -1.0 <= low and high <= 1.0 else np.clip(array, -1.0, 1.0)

    def _period_kpis(self, report: PeriodReport, fill_rate: np.ndarray, units_short: float) -> dict[str, Any]:
        """The period's KPIs: money, units and, per tier (``tier_names`` order), the fill rate.

        ``fill_rate`` (T,) and ``units_short`` come from the observation builder's record of the
        period (:meth:`ObservationBuilder.record`).
        """
        return {
            "revenue": report.revenue,
            "cash": report.cash,
            "inventory_value": report.inventory_value,
            "units_short": units_short,
            "rule_interventions": report.decision.intervention_count,
            "fill_rate_by_tier": fill_rate,
            **report.costs,
        }


def _is_number(value: object, positive: bool = False) -> bool:
    """A real, finite number ≥ 0 (> 0 with ``positive``); booleans are not numbers here."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        return False
    return bool(np.isfinite(value)) and (value > 0 if positive else value >= 0)


#: Value types a deep copy may share: immutable.
_IMMUTABLE = frozenset({float, int, bool, str, type(None), np.float64, np.int64, np.bool_})


def _deep_copy(value, memo):
    """A deep copy of one info value: immutables shared, arrays, lists and dicts copied."""
    kind = value.__class__
    if kind is np.ndarray and not value.dtype.hasobject:
        return value.copy()
    if kind is dict or kind is _StepInfo:
        copied = kind(value)
        for key, item in value.items():
            if item.__class__ not in _IMMUTABLE:
                copied[key] = _deep_copy(item, memo)
        return copied
    if kind is list:
        copied = value.copy()
        for index, item in enumerate(value):
            if item.__class__ not in _IMMUTABLE:
                copied[index] = _deep_copy(item, memo)
        return copied
    return copy.deepcopy(value, memo)


class _StepInfo(dict):
    """A step's ``info``: a plain dict, except that its deep copy takes a few microseconds.

    Vector envs (SB3's ``DummyVecEnv``) deep-copy every info every step; :func:`copy.deepcopy`
    visits each of its ~25 values. This copy shares the immutable values (floats, ints,
    strings), copies arrays, lists and dicts, and defers anything else to ``deepcopy``: the
    result is a deep copy all the same. Pickled (``SubprocVecEnv``), it arrives as a plain dict.
    """

    __slots__ = ()

    def __deepcopy__(self, memo):
        return _deep_copy(self, memo)

    def __reduce__(self):
        return dict, (dict(self),)


@njit(cache=True)
def _range_of(array):
    """(all finite, minimum, maximum) of a non-empty 1-D float array, in one pass."""
    low = high = array[0]
    finite = True
    for value in array:
        if not np.isfinite(value):
            finite = False
        if value < low:
            low = value
        if value > high:
            high = value
    return finite, low, high
