"""Customer demand: generated per channel × SKU for a whole episode, then split over tiers.

Demand is drawn once at reset from its own random stream, so an episode's demand depends
only on the seed, never on what a policy does (common random numbers).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from invalloc.config.schema import DemandStream
from invalloc.config.trace import read_history, read_trace
from invalloc.sim.kernels import demand as demand_kernels
from invalloc.sim.kernels import draws
from invalloc.sim.network import Network


class DemandTraceError(ValueError):
    """A demand trace CSV that cannot be replayed; one argument (a line) per problem."""

    def lines(self) -> list[str]:
        return [str(line) for line in self.args]

    def __str__(self) -> str:
        return "; ".join(self.lines())


def _per_sku_value(value: float | dict[str, float] | None, sku: str) -> float:
    if value is None:
        return 0.0
    return float(value[sku]) if isinstance(value, dict) else float(value)


def stream_level(stream: DemandStream, periods: np.ndarray) -> np.ndarray:
    """Relative level of the mean per period (shape of ``periods``): linear trend, sine seasonality."""
    level = np.maximum(1.0 + stream.trend * periods, 0.0)
    if stream.seasonality is not None:
        season = stream.seasonality
        level = level * (1.0 + season.amplitude * np.sin(2 * np.pi * (periods + season.phase) / season.period))
    return level


def _draw_normal(means: np.ndarray, stds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Normal demand (H, k), truncated at zero: a negative draw is no demand."""
    return np.maximum(rng.normal(means, stds), 0.0)


class DemandModel:
    """The scenario's demand streams, prepared once per episode length.

    ``expected`` holds the mean demand per period, channel and SKU, shape (H + 1, C, S);
    :meth:`sample` draws tier demand (H, T, S) for one episode.

    Poisson streams are drawn per tier with mean × the tier's demand share: independent
    Poisson tiers are exactly a multinomial split of Poisson channel demand, and far cheaper
    to draw. Negative binomial streams are drawn the same way from a gamma-distributed rate
    (a negative binomial is a gamma–Poisson mixture). Normal streams are drawn per channel
    and then split over tiers (:func:`split_over_tiers`).
    """

    def __init__(self, network: Network, periods: int) -> None:
        self.network = network
        self.periods = periods
        t = np.arange(periods + 1, dtype=float)[:, None]
        sku_index = {sku: i for i, sku in enumerate(network.skus)}
        self.expected = np.zeros((periods + 1, len(network.channels), network.n_skus))
        #: Per stream: (stream, channel, SKU columns (k,), mean (H, k), standard deviation (H, k)).
        self.streams = []
        #: How each stream is drawn: (kind, channel, columns (k,), tier indices (M,), tier shares
        #: (1, M, 1), mean (H, 1, k), standard deviation (H, k), gamma shape (H, 1, k) of
        #: negative binomials).
        self._plans = []
        for stream in network.scenario.demand.streams:
            c = network.channels.index(stream.channel)
            skus = network.skus if stream.skus == "*" else stream.skus
            columns = np.array([sku_index[s] for s in skus], dtype=np.int64)
            level = stream_level(stream, t)  # (H + 1, 1)
            mean = level * np.array([_per_sku_value(stream.mean, s) for s in skus])[None, :]
            std = level * np.array([_per_sku_value(stream.std, s) for s in skus])[None, :]
            self.expected[:, c, columns] += mean
            mean, std = mean[:periods], std[:periods]
            self.streams.append((stream, c, columns, mean, std))
            members = np.flatnonzero(network.tier_channel == c)
            shares = network.tier_share[members][None, :, None]
            shape = None
            if stream.distribution == "negative_binomial":
                variance = np.maximum(std**2, mean + 1e-12)
                shape = (mean**2 / np.maximum(variance - mean, 1e-12))[:, None, :]
                # The gamma draw's constant arguments: where the rate may be drawn, shape and scale.
                rate_mean = mean[:, None, :]
                shape = (rate_mean > 0, np.maximum(shape, 1e-12), rate_mean / np.maximum(shape, 1e-12))
            self._plans.append((stream.distribution, c, columns, members, shares, mean[:, None, :], std, shape))
        self._split = _tier_split_plan(network)
        #: The compiled draws' precomputed constants (:func:`_draw_plans`), made at the first
        #: sample; False when numpy draws.
        self._draw_plans = None
        self._plans_lock = threading.Lock()
        #: Moving-block bootstrap: (history (P, C, S) in units, block length), or None.
        self._bootstrap: tuple[np.ndarray, int] | None = None
        bootstrap = network.scenario.demand.bootstrap
        if bootstrap is not None:
            history = load_bootstrap_history(network)
            self._bootstrap = (history, bootstrap.block_periods)
            # Planners forecast the history's average (the bootstrap's expectation, up to its ends).
            self.expected[:] = history.mean(axis=0)

    def bootstrap_periods(self, rng: np.random.Generator) -> np.ndarray:
        """History periods (H,) of one bootstrap episode: blocks of ``block_periods`` consecutive
        periods, each starting at a uniformly drawn period 0 … P − block."""
        history, block = self._bootstrap
        starts = rng.integers(0, history.shape[0] - block + 1, size=-(-self.periods // block))
        return (starts[:, None] + np.arange(block)[None, :]).ravel()[: self.periods]

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Demand per period, tier and SKU for one episode, shape (H, T, S), in units.

        The draws are compiled (:mod:`invalloc.sim.kernels.draws`) when ``rng`` is numpy's
        PCG64 ``Generator`` and the streams' parameters are ordinary (finite, non-negative):
        the same numbers, and ``rng`` left in the same state, as :meth:`_sample_numpy`.
        """
        n = self.network
        if self._bootstrap is not None:
            # Whole history periods (every channel and SKU together), then split over tiers.
            channel_demand = self._bootstrap[0][self.bootstrap_periods(rng)]
            return _split_over_tiers(self._split, n, channel_demand, rng)
        if self._draw_plans is None:
            with self._plans_lock:  # a simulator's thread and its background thread may both come
                if self._draw_plans is None:
                    self._draw_plans = _draw_plans(self)
        state = draws.state_words(rng) if self._draw_plans is not False else None
        if state is None:
            return self._sample_numpy(rng)
        return self._sample_compiled(state)

    def _sample_compiled(self, state: np.ndarray) -> np.ndarray:
        """:meth:`_sample_numpy`'s draws and additions, compiled, advancing the PCG64 ``state``
        (:func:`~invalloc.sim.kernels.draws.state_words`)."""
        n = self.network
        tiers = np.zeros((self.periods, len(n.tiers), n.n_skus))
        channel_demand = None
        log_factorial, streams, split = self._draw_plans
        for plan, (kind, c, columns, members, *_) in zip(streams, self._plans, strict=True):
            if kind == "normal":
                if channel_demand is None:
                    channel_demand = np.zeros((self.periods, len(n.channels), n.n_skus))
                demand_kernels.draw_normal_channel(state, channel_demand, c, columns, *plan, n.integer_units)
            elif kind == "negative_binomial":
                rate = np.empty(plan[0].shape)  # the drawn rates (H, k); each call its own (threads)
                drawn = demand_kernels.draw_negative_binomial_tiers(
                    state, tiers, members, columns, *plan, rate, log_factorial
                )
                if not drawn:
                    raise ValueError("lam value too large")  # as numpy's Generator.poisson refuses it
            else:
                demand_kernels.draw_poisson_tiers(state, tiers, members, columns, plan, log_factorial)
        if channel_demand is not None:
            _draw_split_over_tiers(self._split, split, n, channel_demand, state, tiers)
        return tiers

    def _sample_numpy(self, rng: np.random.Generator) -> np.ndarray:
        """:meth:`sample` drawn by numpy, stream by stream (the reference the compiled draws match)."""
        n = self.network
        tiers = np.zeros((self.periods, len(n.tiers), n.n_skus))
        channel_demand = None
        for kind, c, columns, members, shares, mean, std, shape in self._plans:
            if kind == "normal":
                if channel_demand is None:
                    channel_demand = np.zeros((self.periods, len(n.channels), n.n_skus))
                units = _draw_normal(mean[:, 0, :], std, rng)
                channel_demand[:, c, columns] += np.where(n.integer_units[columns], np.round(units), units)
                continue
            rate = mean
            if kind == "negative_binomial":
                # A negative binomial is a Poisson whose rate is gamma distributed: draw the
                # rate per period and SKU, then the tiers as Poisson thinnings of it.
                positive, gamma_shape, gamma_scale = shape
                rate = np.where(positive, rng.gamma(gamma_shape, gamma_scale), 0.0)
            # tiers[:, members[:, None], columns[None, :]] += the draws (H, M, k), compiled.
            demand_kernels.add_tier_draws(tiers, members, columns, rng.poisson(rate * shares))
        if channel_demand is not None:
            _add_split_over_tiers(self._split, n, channel_demand, rng, tiers)
        return tiers

    @property
    def draws_compiled(self) -> bool:
        """Whether :meth:`sample` draws in compiled code, which lets other threads run meanwhile
        (known after the first sample; a bootstrap resamples history with numpy)."""
        return self._bootstrap is None and self._draw_plans not in (None, False)


#: The fewest demand values (H × T × S) of an episode drawn ahead: below, handing the draw to
#: the background thread costs more than it saves (``scripts/bench_sim.py``: OR-Gym's 30 values
#: ran at 0.85–0.98× and retail's 8,736 at 0.95–1.01× of one thread; 62,400 at 200 SKUs at 1.22–1.28×).
AHEAD_MIN_VALUES = 20_000
#: Bytes of demand one simulator keeps for the seeds it is told come back (:meth:`EpisodeDemands.keep`).
KEEP_BYTES = 512 * 2**20


class EpisodeDemands:
    """One simulator's episode demand by seed: drawn when an episode starts, or ahead of time on
    a background thread, and kept while the same seed may start another episode.

    Demand depends only on the seed (common random numbers), so where it was drawn never
    changes an episode: only how long its reset takes.

    - The last episode's demand is kept: every policy of a comparison runs on the same seed.
    - :meth:`draw_ahead` draws a coming episode's demand on the process's background thread
      while this one runs, when its draws are compiled (they let the simulator's thread run)
      and it has at least :data:`AHEAD_MIN_VALUES` values.
    - :meth:`keep` names seeds that will come back (a tuner's evaluation seeds), whose demand
      is then kept, up to :data:`KEEP_BYTES`.

    The arrays handed out are read-only, since several episodes share them.
    """

    def __init__(self, draw: Callable[[int], np.ndarray], background: Callable[[], bool]) -> None:
        #: draw(seed) -> demand (H, T, S), a pure function of the seed; background() whether
        #: drawing ahead pays (the draws are compiled).
        self._draw, self._background = draw, background
        self._last: tuple[int, np.ndarray] | None = None
        self._kept: dict[int, np.ndarray | None] = {}
        #: The demand being drawn ahead: (process id, seed, future), or None.
        self._ahead: tuple[int, int, Future] | None = None

    def get(self, seed: int) -> np.ndarray:
        """The demand of episode ``seed``: kept, drawn ahead (waiting for it if need be), or drawn now."""
        if self._last is not None and self._last[0] == seed:
            return self._last[1]
        demand = self._kept.get(seed)
        if demand is None:
            demand = self._take_ahead(seed)
        if demand is None:
            demand = self._drawn(seed)
        if seed in self._kept and self._kept[seed] is None and self._kept_bytes() + demand.nbytes <= KEEP_BYTES:
            self._kept[seed] = demand
        self._last = (seed, demand)
        return demand

    def draw_ahead(self, seed: int) -> None:
        """Start drawing episode ``seed``'s demand on the background thread, unless it is at hand,
        small (the last episode's had fewer than :data:`AHEAD_MIN_VALUES` values) or not drawn
        compiled. One episode ahead at most: a later call replaces it."""
        if self.at_hand(seed) or not self.ahead_pays():
            return
        if self._ahead is not None and self._ahead[:2] == (os.getpid(), seed):
            return
        self._ahead = (os.getpid(), seed, _background_thread().submit(self._drawn, seed))

    def ahead_pays(self) -> bool:
        """Whether :meth:`draw_ahead` draws at all: the last episode had at least
        :data:`AHEAD_MIN_VALUES` demand values, drawn compiled."""
        return self._last is not None and self._last[1].size >= AHEAD_MIN_VALUES and self._background()

    def keep(self, seeds: Iterable[int]) -> None:
        """Keep the demand of ``seeds`` once drawn, beside the seeds kept before (a tuner's
        workers may get its seeds in chunks), up to :data:`KEEP_BYTES` in all."""
        for seed in seeds:
            self._kept.setdefault(int(seed), None)

    def at_hand(self, seed: int) -> bool:
        """Whether episode ``seed``'s demand is kept (no draw needed to start it)."""
        return (self._last is not None and self._last[0] == seed) or self._kept.get(seed) is not None

    def _take_ahead(self, seed: int) -> np.ndarray | None:
        """The demand drawn ahead for ``seed`` (waited for), or None; a guess that missed is dropped."""
        ahead, self._ahead = self._ahead, None
        if ahead is None or ahead[0] != os.getpid():  # drawn ahead in the parent of a fork: not here
            return None
        if ahead[1] != seed:
            return None
        return ahead[2].result()  # a failed draw raises here, as drawing now would

    def _drawn(self, seed: int) -> np.ndarray:
        demand = self._draw(seed)
        demand.flags.writeable = False
        return demand

    def _kept_bytes(self) -> int:
        return sum(demand.nbytes for demand in self._kept.values() if demand is not None)


#: The process's background thread for demand drawn ahead (made when first needed).
_BACKGROUND: list[ThreadPoolExecutor | None] = [None]
_BACKGROUND_LOCK = threading.Lock()


def _background_thread() -> ThreadPoolExecutor:
    with _BACKGROUND_LOCK:
        if _BACKGROUND[0] is None:
            _BACKGROUND[0] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="invalloc-demand")
        return _BACKGROUND[0]


def _forget_background_thread() -> None:
    """In a forked child: the parent's thread did not come along (nor may its lock be free)."""
    global _BACKGROUND_LOCK
    _BACKGROUND_LOCK = threading.Lock()
    _BACKGROUND[0] = None


os.register_at_fork(after_in_child=_forget_background_thread)


def _ordinary(*arrays: np.ndarray) -> bool:
    """Every value finite and non-negative."""
    return all(bool(np.all(np.isfinite(a) & (a >= 0))) for a in arrays)


def _draw_plans(model: DemandModel):
    """What the compiled draws of :meth:`DemandModel.sample` precompute, once per model:
    numpy's ``random_log_gam`` table, per stream its constant arguments (Poisson: the means'
    :func:`~invalloc.sim.kernels.draws.poisson_constants`; negative binomial: where positive,
    gamma shape and scale (H, k) and the shapes' :func:`~invalloc.sim.kernels.draws.gamma_constants`,
    tier shares (M,); normal: means and
    standard deviations (H, k)), and per channel its tiers' binomial split probabilities and
    their inversion tables.
    False when a parameter is out of the ordinary (numpy then draws, and checks it)."""
    streams = []
    for kind, _, _, _, shares, mean, std, shape in model._plans:
        if kind == "normal":
            means, stds = np.ascontiguousarray(mean[:, 0, :]), np.ascontiguousarray(std)
            if not (_ordinary(stds) and np.all(np.isfinite(means))):
                return False
            streams.append((means, stds))
        elif kind == "negative_binomial":
            positive, gamma_shape, gamma_scale = shape
            if not _ordinary(gamma_shape, gamma_scale):
                return False
            shapes = np.ascontiguousarray(gamma_shape[:, 0, :])
            streams.append(
                (
                    np.ascontiguousarray(positive[:, 0, :]),
                    shapes,
                    np.ascontiguousarray(gamma_scale[:, 0, :]),
                    draws.gamma_constants(shapes.ravel()),
                    np.ascontiguousarray(shares[0, :, 0]),
                )
            )
        else:
            means = (mean * shares).ravel()  # (H, M, k) in C order, as numpy's draw computes them
            if not (_ordinary(means) and np.all(means <= draws.POISSON_LAM_MAX)):
                return False
            streams.append(draws.poisson_constants(means))
    channels = model._split[0]
    split = []
    for members, shares in channels:
        probabilities = []
        left = 1.0
        for k in range(len(members) - 1):
            p = min(shares[k] / left, 1.0) if left > 0 else 0.0
            if not 0.0 <= p <= 1.0:
                return False
            probabilities.append(p)
            left -= shares[k]
        probabilities = np.array(probabilities)
        split.append((probabilities, *draws.binomial_inversion_tables(probabilities)))
    return draws.log_factorials(), streams, split


def expected_demand(network: Network, periods: int) -> np.ndarray:
    """Mean demand per period, channel and SKU, shape (H, C, S) (zero where only a trace is given)."""
    return DemandModel(network, periods).expected[:periods]


def load_demand_trace(network: Network, path: str | Path, periods: int) -> np.ndarray:
    """Read a long-format CSV ``period,channel,sku,quantity`` into (H, C, S) units.

    :raises DemandTraceError: every problem of the file (:func:`invalloc.config.trace.read_trace`),
        one line each naming the file.
    """
    path = Path(path)
    demand, problems = read_trace(path, list(network.channels), list(network.skus), periods)
    if problems:
        raise DemandTraceError(*[f"{path}: {problem}" for problem in problems])
    return demand


#: Bootstrap histories read, by (file, modification time, size, channels, SKUs): every
#: simulator of a comparison shares one read-only copy.
_HISTORIES: dict[tuple, np.ndarray] = {}


def load_bootstrap_history(network: Network) -> np.ndarray:
    """The scenario's ``demand.bootstrap.history`` as (P, C, S) units (read-only).

    :raises DemandTraceError: every problem of the file, one line each naming the file.
    """
    path = network.loaded.base_dir / network.scenario.demand.bootstrap.history
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, tuple(network.channels), tuple(network.skus))
    except OSError:
        key = None
    if key is not None and key in _HISTORIES:
        return _HISTORIES[key]
    history, problems = read_history(path, list(network.channels), list(network.skus))
    if problems:
        raise DemandTraceError(*[f"{path}: {problem}" for problem in problems])
    history.flags.writeable = False
    if key is not None:
        if len(_HISTORIES) >= 8:
            _HISTORIES.clear()
        _HISTORIES[key] = history
    return history


def split_over_tiers(network: Network, channel_demand: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Split (H, C, S) channel demand into (H, T, S) tier demand by the tiers' demand shares.

    Whole-unit SKUs are split multinomially (each unit belongs to one tier); others pro rata.
    A channel with a single tier keeps its demand exactly.
    """
    return _split_over_tiers(_tier_split_plan(network), network, channel_demand, rng)


def _tier_split_plan(network: Network) -> tuple[list[tuple[np.ndarray, np.ndarray]], bool, bool]:
    """What :func:`split_over_tiers` needs of the network: per channel its tiers and their
    demand shares, whether any SKU and whether every SKU is counted in whole units."""
    channels = []
    for c in range(len(network.channels)):
        members = np.flatnonzero(network.tier_channel == c)
        channels.append((members, network.tier_share[members]))
    return channels, bool(network.integer_units.any()), bool(network.integer_units.all())


def _added_without_draws(
    tiers: np.ndarray, members: np.ndarray, shares: np.ndarray, total: np.ndarray, any_integer: bool
) -> bool:
    """Add a channel's demand ``total`` (H, S) to its tiers where no draw is needed: a single
    tier keeps it all, and with no whole-unit SKU it is split pro rata. False: it needs draws."""
    if len(members) == 1:
        demand_kernels.add_channel_total(tiers, members[0], total)
        return True
    if not any_integer:
        demand_kernels.add_pro_rata(tiers, members, shares, total)
        return True
    return False


def _add_split_over_tiers(
    plan, network: Network, channel_demand: np.ndarray, rng: np.random.Generator, tiers: np.ndarray
) -> None:
    """``tiers += _split_over_tiers(plan, network, channel_demand, rng)`` without the temporary
    arrays: the same draws, and each element of ``tiers`` gets the same one addition."""
    channels, any_integer, all_integer = plan
    integer = network.integer_units
    for c, (members, shares) in enumerate(channels):
        total = channel_demand[:, c, :]
        if _added_without_draws(tiers, members, shares, total, any_integer):
            continue
        remaining = demand_kernels.whole_counts(total)
        left = 1.0
        no_draws = np.zeros(0, dtype=np.int64)
        for k, member in enumerate(members):
            last = k == len(members) - 1
            draws = no_draws
            if not last:
                # Only the non-zero counts are drawn (as _split_over_tiers draws them).
                counts = demand_kernels.nonzero_counts(remaining)
                draws = rng.binomial(counts, min(shares[k] / left, 1.0) if left > 0 else 0.0)
                left -= shares[k]
            demand_kernels.add_tier_split(tiers, member, remaining, draws, last, total, shares[k], integer, all_integer)


def _draw_split_over_tiers(
    plan, tables, network: Network, channel_demand: np.ndarray, state: np.ndarray, tiers: np.ndarray
) -> None:
    """:func:`_add_split_over_tiers` with compiled binomial draws advancing the PCG64 ``state``
    (``tables``: per channel, its non-last tiers' probabilities and their
    :func:`~invalloc.sim.kernels.draws.binomial_inversion_tables`)."""
    channels, any_integer, all_integer = plan
    integer = network.integer_units
    for c, (members, shares) in enumerate(channels):
        total = channel_demand[:, c, :]
        if _added_without_draws(tiers, members, shares, total, any_integer):
            continue
        demand_kernels.draw_channel_split(state, tiers, members, *tables[c], total, shares, integer, all_integer)


def _split_over_tiers(plan, network: Network, channel_demand: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """:func:`split_over_tiers` with the network's :func:`_tier_split_plan`."""
    channels, any_integer, all_integer = plan
    periods, _, n_skus = channel_demand.shape
    tiers = np.zeros((periods, len(network.tiers), n_skus))
    for c, (members, shares) in enumerate(channels):
        total = channel_demand[:, c, :]
        if len(members) == 1:
            tiers[:, members[0], :] = total
            continue
        if any_integer:
            # Multinomial split of every (period, SKU) count as a chain of binomials, vectorised.
            remaining = total.astype(np.int64)
            left = 1.0
            for k, member in enumerate(members):
                if k == len(members) - 1:
                    whole = remaining
                else:
                    # Only the non-zero counts are drawn: a binomial of 0 trials is 0 and takes
                    # nothing from the stream, so the draws (in C order) are the same numbers.
                    whole = np.zeros_like(remaining)
                    counted = remaining != 0
                    whole[counted] = rng.binomial(remaining[counted], min(shares[k] / left, 1.0) if left > 0 else 0.0)
                    remaining = remaining - whole
                    left -= shares[k]
                # Every SKU whole: np.where would pick ``whole`` everywhere (as float64).
                tiers[:, member, :] = (
                    whole if all_integer else np.where(network.integer_units, whole, total * shares[k])
                )
        else:
            tiers[:, members, :] = (total[..., None] * shares).transpose(0, 2, 1)
    return tiers
