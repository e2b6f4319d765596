"""Demand fitted from a sales history: the scenario's demand models per channel × SKU.

:func:`fit_demand` turns a :class:`~invalloc.history.sales.SalesHistory` into the ``demand:``
block of a scenario, in one of two ways.

``method="model"`` (the default) fits, for every channel × SKU series, the scenario's own
parametric demand (:class:`invalloc.config.schema.DemandStream`, drawn by
:mod:`invalloc.sim.demand`), by maximum likelihood with ``scipy.optimize.minimize``
(L-BFGS-B, bounded) over ``scipy.stats`` log-likelihoods:

- **Distributions**: Poisson, negative binomial and normal, each with and without a linear
  trend and with and without one yearly sine harmonic: up to 12 candidates per series. A
  candidate's mean in scenario period ``t`` is exactly the scenario's form
  ``mean · max(1 + trend·t, 0) · (1 + amplitude·sin(2π(t + phase)/period))``, with ``t = 0``
  the **first period after the history** (the forecast origin), so the history is
  ``t = −P … −1`` and ``mean`` is the level at the origin. The standard deviation scales with
  the same level, as in the simulator: ``std_t = std · level_t`` (negative binomial: variance
  ``max(std_t², mean_t)``; normal: drawn, truncated at zero and, for whole units, rounded).
- **Where the data support it**: the yearly harmonic (period ``round(365.25 / period_days)``,
  52 for weekly history) is tried only when the history holds at least one full year of
  periods; the trend only with at least :data:`MIN_TREND_PERIODS` periods. The sine's two
  coefficients are each bounded to ±1; a fitted amplitude above 1 is written as 1.
- **Whole-unit histories** (every quantity a whole number) are fitted as counts: Poisson and
  negative binomial probabilities, and the normal as the probability of the rounded,
  zero-truncated draw (``P(y − ½ < D ≤ y + ½)``, ``P(D ≤ ½)`` for 0), so every candidate's
  likelihood is a probability and their AICs compare. Fractional histories are fitted with
  the normal only (its density, and ``P(D ≤ 0)`` for zeros).
- **Choice**: the candidate with the lowest **AIC** (``2k − 2 log L``; ties go to the simpler
  candidate). Every candidate's AIC is reported.
- **Censored sales**: periods flagged ``stockout`` are **right-censored** observations: their
  likelihood is ``P(D ≥ sold)`` (demand was at least what sold), not ``P(D = sold)``. A series
  with fewer than :data:`MIN_OBSERVED` uncensored periods is fitted as if nothing were
  censored (nothing else bounds its demand).
- **Intermittent series** (mostly zeros) are fitted like any other (usually Poisson or negative
  binomial with a small mean). A series that never sold (all zeros, none censored) gets **no
  stream**: it is listed in :attr:`DemandFit.series` with model ``"none"``.
- **Hold-out check**: the chosen candidate is refitted without the last ``holdout_periods``
  periods and its mean forecast for them is compared (MAE over their uncensored periods)
  with a naive forecast: the value one year earlier (seasonal naive) when the shortened
  history holds a full year, else the last value. The verdict is ``better`` (model MAE below
  95 % of the naive MAE), ``even`` (within ±5 %) or ``worse``.

Series without trend or seasonality of one channel and one distribution share one stream
(per-SKU ``mean``/``std``); a series with its own trend or seasonality is its own stream.

``method="bootstrap"`` fits nothing: the scenario's demand becomes a **moving-block
bootstrap** of the history (``demand: bootstrap: {history: sales_fit.csv, block_periods: B}``),
drawn fresh per episode seed by the simulator: each episode is a sequence of blocks of ``B``
whole periods, each block starting at a uniformly drawn period of the history, so the
correlation across channels and SKUs within a period and over ``B`` consecutive periods is
kept (the calendar position of a block is not: trend and season are scrambled). Stockout
periods are written as ``max(sold, mean of the series' uncensored periods)``.
:attr:`DemandFit.files` holds the CSV (``period,channel,sku,quantity``) that the caller
writes next to the scenario YAML under the name :attr:`DemandFit.demand` references.

Example::

    history, problems = read_sales(path, channels, skus)
    fit = fit_demand(history)                      # or method="bootstrap"
    scenario["demand"] = fit.demand                # then write fit.files next to the YAML
    Path("fit.json").write_text(fit.to_json())
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import optimize, special, stats
from threadpoolctl import threadpool_limits

from invalloc.config.schema import MAX_UNITS
from invalloc.history.sales import SalesHistory

#: Candidate distributions, in the order ties are broken (simplest first).
DISTRIBUTIONS = ("poisson", "negative_binomial", "normal")
#: The selection criterion.
CRITERION = "AIC, simplest candidate within 2 of the lowest"
#: Candidates within this many AIC units of the lowest are equally supported by the data
#: (Burnham & Anderson); the simplest of them is chosen.
AIC_SUPPORT = 2.0
#: Days per year, for the yearly seasonal period in periods.
YEAR_DAYS = 365.25
#: Fewest periods for which a trend is tried.
MIN_TREND_PERIODS = 8
#: Fewest uncensored periods for the stockout flags to be used (see module docstring).
MIN_OBSERVED = 4
#: Default hold-out: a quarter of a year (13 weekly periods), at most a fifth of the history.
HOLDOUT_YEAR_SHARE = 0.25
HOLDOUT_HISTORY_SHARE = 0.2
#: Default bootstrap block: four weeks of periods.
BLOCK_DAYS = 28
#: File name of the bootstrap history written next to the scenario.
BOOTSTRAP_FILE = "sales_fit.csv"
#: Verdict band: the model is "better"/"worse" than naive beyond ±5 % of the naive MAE.
VERDICT_BAND = 0.05
#: Significant digits of the parameters written into the scenario.
DIGITS = 6

_MIN_MEAN = 1e-9  # floor of a candidate's mean (units/period): keeps log-likelihoods finite
_NB_MIN_EXCESS = 1e-6  # the negative binomial's variance is at least mean · (1 + this)


@dataclass(frozen=True)
class SeriesFit:
    """The fit of one channel × SKU series.

    Attributes:
        channel, sku: the series.
        model: ``poisson``, ``negative_binomial`` or ``normal`` (chosen by AIC), ``none`` (never
            sold: no stream) or ``bootstrap``.
        trend_fitted, seasonal_fitted: whether the chosen candidate has a trend / a yearly sine.
        mean: mean demand at the forecast origin (units/period).
        std: standard deviation at the origin (None for Poisson and ``none``).
        trend: relative change of the mean per period (0 without a trend).
        seasonality: ``{"amplitude", "period", "phase"}`` or None.
        aic: AIC of every candidate fitted, by name (e.g. ``negative_binomial+trend+season``).
        holdout: ``{"periods", "model_mae", "naive_mae", "naive", "ratio"}`` or None when the
            history is too short to hold periods out.
        verdict: ``better``, ``even`` or ``worse`` than the naive forecast (``n/a`` without hold-out).
        censored: number of stockout periods (fitted as right-censored).
        history: units sold per period, shape (P,).
        stockout: the stockout flags, shape (P,).
        fitted: the chosen model's mean over the history, shape (P,).
        holdout_forecast: the refitted model's mean over the hold-out periods, shape (h,).
    """

    channel: str
    sku: str
    model: str
    trend_fitted: bool
    seasonal_fitted: bool
    mean: float
    std: float | None
    trend: float
    seasonality: dict | None
    aic: dict[str, float]
    holdout: dict | None
    verdict: str
    censored: int
    history: np.ndarray = field(repr=False)
    stockout: np.ndarray = field(repr=False)
    fitted: np.ndarray = field(repr=False)
    holdout_forecast: np.ndarray = field(repr=False)

    @property
    def name(self) -> str:
        """The chosen candidate's name, e.g. ``poisson+trend``."""
        return _candidate_name(self.model, self.trend_fitted, self.seasonal_fitted)

    def to_dict(self) -> dict:
        """JSON-ready summary (without the per-period arrays)."""
        return {
            "channel": self.channel,
            "sku": self.sku,
            "model": self.model,
            "candidate": self.name,
            "mean": self.mean,
            "std": self.std,
            "trend": self.trend,
            "seasonality": self.seasonality,
            "aic": self.aic,
            "holdout": self.holdout,
            "verdict": self.verdict,
            "periods": int(self.history.size),
            "censored_periods": self.censored,
            "total_units": float(self.history.sum()),
        }


@dataclass(frozen=True)
class DemandFit:
    """What :func:`fit_demand` returns.

    Attributes:
        method: ``model`` or ``bootstrap``.
        demand: the scenario's ``demand:`` block (validates as
            :class:`invalloc.config.schema.Demand`), time origin the first period after the history.
        series: one :class:`SeriesFit` per channel × SKU, in the history's channel, SKU order.
        files: ``{file name: text}`` the caller writes next to the scenario YAML (the bootstrap
            history; empty for ``model``).
        source: the history's file; labels: its first and last period label; period_labels: all.
        period_days: days per period; seasonal_period: the yearly period in periods.
        holdout_periods: periods held out for the hold-out check.
    """

    method: str
    demand: dict
    series: tuple[SeriesFit, ...]
    files: dict[str, str]
    source: str
    labels: tuple[str, str]
    period_labels: tuple[str, ...]
    periods: int
    period_days: int
    seasonal_period: int
    holdout_periods: int

    def to_dict(self) -> dict:
        verdicts = [s.verdict for s in self.series]
        return {
            "method": self.method,
            "source": self.source,
            "first_period": self.labels[0],
            "last_period": self.labels[1],
            "periods": self.periods,
            "period_days": self.period_days,
            "seasonal_period": self.seasonal_period,
            "holdout_periods": self.holdout_periods,
            "criterion": CRITERION if self.method == "model" else None,
            "censoring": "stockout periods are right-censored: likelihood P(demand ≥ sold)"
            if self.method == "model"
            else "stockout periods written as max(sold, mean of the series' uncensored periods)",
            "verdicts": {v: verdicts.count(v) for v in sorted(set(verdicts))},
            "demand": self.demand,
            "series": [s.to_dict() for s in self.series],
        }

    def to_json(self) -> str:
        """The fit as JSON text (``demand`` block, per-series summary)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)


# --------------------------------------------------------------------------------------------
# One series


def _candidate_name(distribution: str, trend: bool, seasonal: bool) -> str:
    return distribution + ("+trend" if trend else "") + ("+season" if seasonal else "")


@dataclass(frozen=True)
class _Series:
    """One series prepared for fitting: sales ``y`` (n,), censored flags, periods ``t = −n … −1``."""

    y: np.ndarray
    censored: np.ndarray
    integer: bool
    omega: float  # 2π / seasonal period

    @property
    def n(self) -> int:
        return self.y.size

    @property
    def t(self) -> np.ndarray:
        return np.arange(-self.n, 0, dtype=float)


@dataclass(frozen=True)
class _Estimate:
    distribution: str
    trend: bool
    seasonal: bool
    theta: np.ndarray  # [log mean, trend · n, α, β, log cv] (those the candidate has)
    n: int  # periods fitted (scales the trend)
    aic: float

    @property
    def k(self) -> int:
        return self.theta.size

    def mean(self, t: np.ndarray, omega: float) -> np.ndarray:
        return _mean(self.theta, _basis(t, self.n, omega), self.trend, self.seasonal)[0]

    def scenario_parameters(self, omega: float, period: int) -> tuple[float, float | None, float, dict | None]:
        """(mean at origin, std at origin, trend per period, seasonality) in the scenario's form."""
        i = 1
        mean = math.exp(self.theta[0])
        trend = 0.0
        seasonality = None
        if self.trend:
            trend = float(self.theta[i]) / self.n
            i += 1
        if self.seasonal:
            alpha, beta = float(self.theta[i]), float(self.theta[i + 1])
            amplitude = min(math.hypot(alpha, beta), 1.0)
            phase = (math.atan2(beta, alpha) / omega) % period
            seasonality = {"amplitude": _round(amplitude), "period": period, "phase": _round(phase)}
            i += 2
        std = None
        if self.distribution != "poisson":
            std = math.exp(self.theta[i]) * mean
            if self.distribution == "negative_binomial" and mean > 0:
                # The scenario (and the simulator) need variance above the mean at the origin.
                std = max(std, math.sqrt(mean) * 1.001)
            std = min(_round(std, up=True), MAX_UNITS)
        return min(_round(mean), MAX_UNITS), std, _round(trend), seasonality


def _round(value: float, up: bool = False) -> float:
    """``value`` to :data:`DIGITS` significant digits (rounded away from zero if ``up``)."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    rounded = float(f"{value:.{DIGITS}g}")
    if up and rounded < value:
        rounded = float(f"{value * (1 + 10 ** (1 - DIGITS)):.{DIGITS}g}")
    return rounded


def _basis(t: np.ndarray, n: int, omega: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mean's regressors at periods ``t``: ``t / n`` (trend), ``sin ωt``, ``cos ωt`` (season)."""
    return t / n, np.sin(omega * t), np.cos(omega * t)


def _mean(theta: np.ndarray, basis: tuple[np.ndarray, ...], trend: bool, seasonal: bool) -> tuple[np.ndarray, int]:
    """Mean per period of a candidate at :func:`_basis` ``basis``, and the index of its next parameter."""
    scaled_t, sine, cosine = basis
    level = np.full(scaled_t.shape, math.exp(min(theta[0], 50.0)))
    i = 1
    if trend:
        level = level * np.maximum(1.0 + theta[i] * scaled_t, 0.0)
        i += 1
    if seasonal:
        level = level * (1.0 + theta[i] * sine + theta[i + 1] * cosine)
        i += 2
    return np.maximum(level, _MIN_MEAN), i


def _log_interval(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """log(Φ(hi) − Φ(lo)) of standard normal bounds, accurate in both tails."""
    upper = lo > 0  # both bounds above the mean: the same interval mirrored below it
    a = special.log_ndtr(np.where(upper, -lo, hi))
    b = special.log_ndtr(np.where(upper, -hi, lo))
    return a + np.log1p(-np.exp(np.minimum(b - a, -1e-300)))


def _log_likelihood(distribution: str, mu: np.ndarray, cv: float, series: _Series) -> float:
    """Log-likelihood of the series under mean ``mu`` (n,) and coefficient of variation ``cv``.

    Censored periods contribute P(D ≥ sold).
    """
    y, censored = series.y, series.censored
    observed = ~censored
    if distribution == "poisson":
        total = stats.poisson.logpmf(y[observed], mu[observed]).sum()
        if censored.any():
            total += stats.poisson.logsf(y[censored] - 1, mu[censored]).sum()
        return float(total)
    if distribution == "negative_binomial":
        variance = np.maximum((cv * mu) ** 2, mu * (1 + _NB_MIN_EXCESS))
        size, p = mu**2 / (variance - mu), mu / variance
        total = stats.nbinom.logpmf(y[observed], size[observed], p[observed]).sum()
        if censored.any():
            total += stats.nbinom.logsf(y[censored] - 1, size[censored], p[censored]).sum()
        return float(total)
    sigma = np.maximum(cv * mu, 1e-9)
    if series.integer:
        # The simulator's normal: drawn, negatives made 0, rounded to whole units.
        lo = np.where(y > 0, (y - 0.5 - mu) / sigma, -np.inf)
        hi = (y + 0.5 - mu) / sigma
        total = _log_interval(lo[observed], hi[observed]).sum()
        if censored.any():
            total += special.log_ndtr(-lo[censored]).sum()
        return float(total)
    z = (y - mu) / sigma
    positive = observed & (y > 0)
    zero = observed & (y <= 0)
    total = (stats.norm.logpdf(z[positive]) - np.log(sigma[positive])).sum()
    total += stats.norm.logcdf(z[zero]).sum()
    if censored.any():
        total += stats.norm.logsf(z[censored]).sum()
    return float(total)


def _start(series: _Series, trend: bool, seasonal: bool) -> tuple[np.ndarray, float]:
    """Starting mean parameters from least squares on the uncensored periods, and a cv guess."""
    observed = ~series.censored
    t = series.t[observed]
    y = series.y[observed]
    columns = [np.ones_like(t)]
    if trend:
        columns.append(t / series.n)
    if seasonal:
        columns += [np.sin(series.omega * t), np.cos(series.omega * t)]
    design = np.column_stack(columns)
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    level = coef[0]
    average = max(float(y.mean()), 1e-3)
    if not level > 0.05 * average:
        level, coef = average, np.zeros_like(coef)
    theta = [math.log(level)]
    rest = coef[1:] / level
    i = 0
    if trend:
        theta.append(float(np.clip(rest[0], -19.0, 0.9)))
        i = 1
    if seasonal:
        theta += [float(np.clip(rest[i], -0.9, 0.9)), float(np.clip(rest[i + 1], -0.9, 0.9))]
    theta = np.array(theta)
    fitted = _mean(theta, _basis(t, series.n, series.omega), trend, seasonal)[0]
    cv = float(np.std(y - fitted) / max(fitted.mean(), 1e-3))
    return theta, max(cv, 1e-3)


def _bounds(series: _Series, trend: bool, seasonal: bool, dispersion: bool) -> list[tuple[float, float]]:
    average = max(float(series.y.mean()), 1.0)
    bounds = [(math.log(1e-6 * average), math.log(MAX_UNITS))]
    if trend:
        # trend · n: the level at the history's first period is 1 − this of the origin's (> 0);
        # at least −0.99 per period (the scenario refuses −1 and below).
        bounds.append((max(-20.0, -0.99 * series.n), 1.0 - 1e-3))
    if seasonal:
        bounds += [(-1.0, 1.0), (-1.0, 1.0)]
    if dispersion:
        bounds.append((math.log(1e-4), math.log(20.0)))
    return bounds


def _fit(series: _Series, distribution: str, trend: bool, seasonal: bool, start: np.ndarray) -> _Estimate:
    """Maximum likelihood of one candidate (scipy.optimize L-BFGS-B over scipy.stats log-likelihoods)."""
    basis = _basis(series.t, series.n, series.omega)
    dispersion = distribution != "poisson"

    def negative_log_likelihood(theta: np.ndarray) -> float:
        mu, i = _mean(theta, basis, trend, seasonal)
        cv = math.exp(theta[i]) if dispersion else 0.0
        value = -_log_likelihood(distribution, mu, cv, series)
        return value if math.isfinite(value) else 1e100

    bounds = _bounds(series, trend, seasonal, dispersion)
    start = np.clip(start, [b[0] for b in bounds], [b[1] for b in bounds])
    result = optimize.minimize(negative_log_likelihood, start, method="L-BFGS-B", bounds=bounds)
    theta = result.x if result.fun <= negative_log_likelihood(start) else start
    aic = 2 * theta.size + 2 * negative_log_likelihood(theta)
    return _Estimate(distribution, trend, seasonal, theta, series.n, float(aic))


def _fit_candidates(series: _Series, period: int) -> list[_Estimate]:
    """Every candidate the series supports, each by maximum likelihood."""
    structures = [(False, False)]
    if series.n >= MIN_TREND_PERIODS:
        structures.append((True, False))
    if period >= 2 and series.n >= period:
        structures.append((False, True))
        if series.n >= MIN_TREND_PERIODS:
            structures.append((True, True))
    distributions = DISTRIBUTIONS if series.integer else ("normal",)
    estimates = []
    for trend, seasonal in structures:
        theta, cv = _start(series, trend, seasonal)
        if "poisson" in distributions:
            poisson = _fit(series, "poisson", trend, seasonal, theta)
            estimates.append(poisson)
            theta = poisson.theta
        observed = series.y[~series.censored]
        nb_cv = max(cv, 1.05 / math.sqrt(max(float(observed.mean()), 1e-3)))
        for distribution in distributions[1:] if series.integer else distributions:
            guess = nb_cv if distribution == "negative_binomial" else cv
            estimates.append(_fit(series, distribution, trend, seasonal, np.append(theta, math.log(guess))))
    return estimates


def _choose(estimates: list[_Estimate]) -> _Estimate:
    """The simplest candidate among those within :data:`AIC_SUPPORT` of the lowest AIC.

    Simplest: fewest parameters, then the earlier distribution (Poisson, negative binomial,
    normal: count models before the normal for count data), then the lower AIC.
    """
    best = min(e.aic for e in estimates)
    order = {d: i for i, d in enumerate(DISTRIBUTIONS)}
    supported = [e for e in estimates if e.aic <= best + AIC_SUPPORT]
    return min(supported, key=lambda e: (e.k, order[e.distribution], e.aic))


def _naive(y: np.ndarray, train: int, h: int, period: int) -> tuple[np.ndarray, str]:
    """Naive forecast of periods ``train … train + h − 1`` from ``y[:train]``."""
    if period >= 2 and train >= period:
        index = np.arange(train, train + h) - period
        index = np.where(index >= train, index - period * ((index - train) // period + 1), index)
        return y[index], "seasonal naive (same period a year earlier)"
    return np.full(h, y[train - 1]), "last value"


def _holdout(series: _Series, chosen: _Estimate, h: int, period: int) -> tuple[dict | None, str, np.ndarray]:
    """Refit the chosen candidate without the last ``h`` periods; MAE against the naive forecast."""
    train = series.n - h
    if h < 1 or train < max(MIN_TREND_PERIODS, 2 * h):
        return None, "n/a", np.zeros(0)
    short = _Series(series.y[:train], series.censored[:train], series.integer, series.omega)
    if chosen.seasonal and train < period:
        return None, "n/a", np.zeros(0)
    theta, cv = _start(short, chosen.trend, chosen.seasonal)
    if chosen.distribution != "poisson":
        theta = np.append(theta, chosen.theta[-1])
    refit = _fit(short, chosen.distribution, chosen.trend, chosen.seasonal, theta)
    forecast = refit.mean(np.arange(h, dtype=float), series.omega)
    actual = series.y[train:]
    observed = ~series.censored[train:]
    naive, kind = _naive(series.y, train, h, period)
    if not observed.any():
        return None, "n/a", forecast
    model_mae = float(np.abs(actual - forecast)[observed].mean())
    naive_mae = float(np.abs(actual - naive)[observed].mean())
    return _holdout_summary(h, model_mae, naive_mae, kind), _verdict(model_mae, naive_mae), forecast


def _holdout_summary(h: int, model_mae: float, naive_mae: float, kind: str) -> dict:
    ratio = model_mae / naive_mae if naive_mae > 0 else (1.0 if model_mae == 0 else None)
    return {
        "periods": h,
        "model_mae": _round(model_mae),
        "naive_mae": _round(naive_mae),
        "naive": kind,
        "ratio": None if ratio is None else _round(ratio),
    }


def _verdict(model_mae: float, naive_mae: float) -> str:
    if model_mae < naive_mae * (1 - VERDICT_BAND):
        return "better"
    if model_mae <= naive_mae * (1 + VERDICT_BAND):
        return "even"
    return "worse"


def _fit_series(
    channel: str, sku: str, y: np.ndarray, censored: np.ndarray, integer: bool, period: int, h: int
) -> SeriesFit:
    omega = 2 * math.pi / period if period >= 2 else 0.0
    n_censored = int(censored.sum())
    if not (y > 0).any() and not censored.any():
        return SeriesFit(
            channel, sku, "none", False, False, 0.0, None, 0.0, None, {}, None, "n/a", 0,
            y, censored, np.zeros_like(y), np.zeros(0),
        )  # fmt: skip
    used = censored if (~censored).sum() >= MIN_OBSERVED else np.zeros_like(censored)
    series = _Series(y, used, integer, omega)
    estimates = _fit_candidates(series, period)
    chosen = _choose(estimates)
    mean, std, trend, seasonality = chosen.scenario_parameters(omega, period)
    holdout, verdict, forecast = _holdout(series, chosen, h, period)
    return SeriesFit(
        channel=channel,
        sku=sku,
        model=chosen.distribution,
        trend_fitted=chosen.trend,
        seasonal_fitted=chosen.seasonal,
        mean=mean,
        std=std,
        trend=trend,
        seasonality=seasonality,
        aic={_candidate_name(e.distribution, e.trend, e.seasonal): _round(e.aic) for e in estimates},
        holdout=holdout,
        verdict=verdict,
        censored=n_censored,
        history=y,
        stockout=censored,
        fitted=chosen.mean(series.t, omega),
        holdout_forecast=forecast,
    )


# --------------------------------------------------------------------------------------------
# The demand block


def _streams(series: list[SeriesFit]) -> list[dict]:
    """Scenario streams: one per channel and distribution for the series without trend or
    season (per-SKU mean/std), one per series with its own trend or seasonality."""
    streams: list[dict] = []
    grouped: dict[tuple[str, str], list[SeriesFit]] = {}
    for s in series:
        if s.model not in DISTRIBUTIONS:
            continue
        if s.trend_fitted or s.seasonal_fitted:
            stream = {"channel": s.channel, "skus": [s.sku], "distribution": s.model, "mean": s.mean}
            if s.std is not None:
                stream["std"] = s.std
            if s.trend_fitted:
                stream["trend"] = s.trend
            if s.seasonality is not None:
                stream["seasonality"] = dict(s.seasonality)
            streams.append(stream)
        else:
            grouped.setdefault((s.channel, s.model), []).append(s)
    plain = []
    for (channel, model), members in grouped.items():
        stream = {
            "channel": channel,
            "skus": [s.sku for s in members],
            "distribution": model,
            "mean": {s.sku: s.mean for s in members},
        }
        if model != "poisson":
            stream["std"] = {s.sku: s.std for s in members}
        plain.append(stream)
    return plain + streams


def _default_holdout(periods: int, seasonal_period: int) -> int:
    """A quarter of a year of periods, at most a fifth of the history (0 for under 5 periods)."""
    quarter = max(1, round(HOLDOUT_YEAR_SHARE * max(seasonal_period, 4)))
    return min(quarter, int(HOLDOUT_HISTORY_SHARE * periods))


def _imputed(history: SalesHistory) -> np.ndarray:
    """Sales with stockout cells raised to the mean of the series' uncensored periods, (P, C, S)."""
    quantity = history.quantity.astype(float).copy()
    observed = ~history.stockout
    counts = observed.sum(axis=0)
    means = np.where(counts > 0, (quantity * observed).sum(axis=0) / np.maximum(counts, 1), 0.0)
    raised = np.maximum(quantity, means[None])
    return np.where(history.stockout, raised, quantity)


def _bootstrap_csv(quantity: np.ndarray, history: SalesHistory) -> str:
    lines = ["period,channel,sku,quantity"]
    for p in range(quantity.shape[0]):
        for c, channel in enumerate(history.channels):
            for s, sku in enumerate(history.skus):
                lines.append(f"{p},{channel},{sku},{quantity[p, c, s]:.10g}")
    return "\n".join(lines) + "\n"


def fit_demand(
    history: SalesHistory,
    *,
    method: Literal["model", "bootstrap"] = "model",
    holdout_periods: int | None = None,
    block_periods: int | None = None,
    bootstrap_file: str = BOOTSTRAP_FILE,
) -> DemandFit:
    """Fit the scenario's demand to a sales history (see the module docstring for the models,
    the criterion, censoring and the bootstrap).

    Args:
        history: units sold per period, channel and SKU (:func:`invalloc.history.sales.read_sales`).
            The fitted demand's period 0 is the first period after it.
        method: ``model`` (parametric fit per series) or ``bootstrap`` (block resampling).
        holdout_periods: periods at the end held out for the hold-out check; None: a quarter of
            a year of periods (13 weekly), at most a fifth of the history. 0 skips the check.
        block_periods: bootstrap block length in periods; None: four weeks of periods (at most
            the history's length).
        bootstrap_file: the name of the bootstrap history in :attr:`DemandFit.files`.

    Returns:
        a :class:`DemandFit`.

    Raises:
        ValueError: an unknown method, a bad hold-out or block length, or (model) a history in
            which nothing ever sold (no stream could be written).
    """
    periods = history.quantity.shape[0]
    seasonal_period = int(round(YEAR_DAYS / history.period_days))
    if method not in ("model", "bootstrap"):
        raise ValueError(f"method={method!r}: use 'model' or 'bootstrap'")
    h = _default_holdout(periods, seasonal_period) if holdout_periods is None else int(holdout_periods)
    if not 0 <= h < periods:
        raise ValueError(
            f"holdout_periods={holdout_periods}: must be from 0 to {periods - 1} (the history's periods − 1)"
        )
    common = dict(
        source=history.source,
        labels=(history.labels[0], history.labels[-1]),
        period_labels=tuple(history.labels),
        periods=periods,
        period_days=history.period_days,
        seasonal_period=seasonal_period,
        holdout_periods=h,
    )
    if method == "bootstrap":
        block = (
            min(max(1, round(BLOCK_DAYS / history.period_days)), periods)
            if block_periods is None
            else int(block_periods)
        )
        if not 1 <= block <= periods:
            raise ValueError(f"block_periods={block_periods}: must be from 1 to {periods} (the history's periods)")
        quantity = _imputed(history)
        series = []
        for c, channel in enumerate(history.channels):
            for s, sku in enumerate(history.skus):
                y = quantity[:, c, s]
                train = periods - h
                holdout, verdict, forecast = None, "n/a", np.zeros(0)
                if h >= 1 and train >= 2 * h:
                    forecast = np.full(h, y[:train].mean())
                    naive, kind = _naive(y, train, h, seasonal_period)
                    model_mae = float(np.abs(y[train:] - forecast).mean())
                    naive_mae = float(np.abs(y[train:] - naive).mean())
                    holdout, verdict = _holdout_summary(h, model_mae, naive_mae, kind), _verdict(model_mae, naive_mae)
                series.append(
                    SeriesFit(
                        channel,
                        sku,
                        "bootstrap",
                        False,
                        False,
                        _round(float(y.mean())),
                        _round(float(y.std())),
                        0.0,
                        None,
                        {},
                        holdout,
                        verdict,
                        int(history.stockout[:, c, s].sum()),
                        history.quantity[:, c, s],
                        history.stockout[:, c, s],
                        np.full(periods, y.mean()),
                        forecast,
                    )  # fmt: skip
                )
        demand = {"bootstrap": {"history": bootstrap_file, "block_periods": block}}
        return DemandFit(
            "bootstrap", demand, tuple(series), {bootstrap_file: _bootstrap_csv(quantity, history)}, **common
        )

    quantity = history.quantity.astype(float)
    integer = bool(np.all(quantity == np.round(quantity)))
    # One BLAS thread: L-BFGS-B's small matrix products are far slower when BLAS threads
    # compete for the cores (about 10× on a busy machine).
    with threadpool_limits(limits=1, user_api="blas"):
        series = [
            _fit_series(channel, sku, quantity[:, c, s], history.stockout[:, c, s], integer, seasonal_period, h)
            for c, channel in enumerate(history.channels)
            for s, sku in enumerate(history.skus)
        ]
    streams = _streams(series)
    if not streams:
        raise ValueError(f"{history.source}: nothing sold in any period; no demand to fit")
    return DemandFit("model", {"streams": streams}, tuple(series), {}, **common)
