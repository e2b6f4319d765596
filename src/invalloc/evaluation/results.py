"""What a comparison produced, and the statistics over its episodes.

The data side of :mod:`invalloc.evaluation.compare`: one policy's KPIs on one episode
(:class:`EpisodeResult`), a whole comparison (:class:`Comparison`), and the tables computed
from them — per-policy means with confidence intervals (:func:`kpi_table`), paired
differences against the reference (:func:`paired_table`), and the share of the gap to the
oracle that each policy closes (:func:`gap_table`). :mod:`~invalloc.evaluation.compare` runs
the episodes; :mod:`~invalloc.evaluation.report` and :mod:`~invalloc.evaluation.mlflow_run`
render and log a :class:`Comparison` and import only this module, so nothing imports upward.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from invalloc.evaluation.specs import PolicySpec


CONFIDENCE = 0.95  # level of every confidence interval and the test's two-sided alpha = 1 − level
BOOTSTRAP_RESAMPLES = 2000  # resamples of the gap-closed bootstrap
BOOTSTRAP_SEED = 0  # seed of the bootstrap's resampling (results must not change between runs)

#: KPIs where a higher value is better (+1) or worse (−1); inventory levels are neither (0).
#: Keys of per-tier and per-DC KPIs are matched by their prefix before the ``/``.
KPI_DIRECTION: dict[str, int] = {
    "total_reward": 1,
    "profit": 1,
    "fill_rate": 1,
    "fill_rate_by_tier": 1,
    "contract_breaches": -1,
    "lost_units": -1,
    "backordered_units": -1,
    "average_inventory_value": 0,
    "inventory_value_by_dc": 0,
    "inventory_turns": 1,
    "minimum_cash": 1,
    "write_downs": -1,
    "rule_interventions": -1,
    "oracle_bound": 1,
}

#: Plain-language label and unit of each KPI (per-tier / per-DC keys use their prefix).
KPI_LABELS: dict[str, str] = {
    "total_reward": "total reward (discounted, currency)",
    "profit": "profit (accrual, currency)",
    "fill_rate": "fill rate (share of demand served on time)",
    "fill_rate_by_tier": "fill rate",
    "contract_breaches": "contract fill-rate breaches (tier × period)",
    "lost_units": "lost sales (units)",
    "backordered_units": "backordered units (units)",
    "average_inventory_value": "average inventory value (currency, at cost)",
    "inventory_value_by_dc": "average inventory value at standard cost (currency)",
    "inventory_turns": "inventory turns (per year)",
    "minimum_cash": "minimum cash (currency)",
    "write_downs": "write-downs (currency)",
    "rule_interventions": "rule interventions (decisions cut)",
    "oracle_bound": "hindsight bound on total reward (currency)",
}


class ComparisonError(ValueError):
    """A comparison that cannot run as asked (too few policies, a bad option); one line."""


def kpi_label(key: str, currency: str = "currency") -> str:
    """``fill_rate_by_tier/stores/key`` → ``fill rate — stores/key``; money in ``currency`` (e.g. USD)."""
    prefix, _, detail = key.partition("/")
    label = KPI_LABELS.get(prefix, key).replace("currency", currency)
    return f"{label} — {detail}" if detail else label


def kpi_short_label(key: str) -> str:
    """The label without its unit, for narrow terminals: ``fill rate — stores/key``."""
    prefix, _, detail = key.partition("/")
    label = KPI_LABELS.get(prefix, key).split(" (")[0]
    return f"{label} — {detail}" if detail else label


def kpi_direction(key: str) -> int:
    return KPI_DIRECTION.get(key.partition("/")[0], 0)


# --------------------------------------------------------------------------- one episode
@dataclass
class EpisodeResult:
    """One policy on one episode.

    :param kpis: flat KPIs (money in the scenario currency, quantities in units), keys as in
        :data:`KPI_DIRECTION`; per-tier fill rates as ``fill_rate_by_tier/<channel>/<tier>``,
        per-DC inventory as ``inventory_value_by_dc/<dc>``; the oracle adds ``oracle_bound``.
    :param demand_digest: sha256 of the episode's demand, (periods, T, S) float64 — equal for
        every policy on the same episode (common random numbers).
    :param trace: per period (every period, warm-up included): ``reward`` (discounted),
        ``profit`` (accrual), ``cash`` at the close — kept for :data:`TRACE_EPISODE` only.
    :param details: the financial statements and the trajectories of the top SKUs
        (:class:`~invalloc.evaluation.episode_reports.EpisodeDetails`) — for :data:`TRACE_EPISODE` only.
    """

    episode: int
    seed: int
    kpis: dict[str, float]
    demand_digest: str
    trace: dict[str, list[float]] | None = None
    details: Any = None


# --------------------------------------------------------------------------- the comparison
@dataclass
class Comparison:
    """The result of :func:`run_comparison`.

    :param scenario: the scenario's name; ``scenario_source`` its YAML, ``scenario_digest`` its sha256.
    :param specs: the compared policies in order (the reference included); ``labels`` their spec texts.
    :param reference: label of the reference policy; ``oracle``: label of the oracle or None.
    :param seed: seed of episode 0; episode ``i`` used ``seed + i`` for every policy.
    :param results: label → one :class:`EpisodeResult` per episode, in episode order.
    :param kpis: per policy and KPI: ``mean``, ``ci_low``, ``ci_high``, ``std``, ``n``.
    :param paired: per non-reference policy and KPI: ``mean_difference`` (policy − reference),
        its ``ci_low``/``ci_high``, ``t_statistic``, ``p_value`` and a ``verdict``.
    :param gap: with the oracle: per policy ``mean_reward``, ``reference_reward``,
        ``oracle_bound``, ``gap_closed`` (share) and its ``ci_low``/``ci_high``; else None.
    :param tiers: ``channel/tier`` names; ``tier_min_fill_rate`` their contractual minimum.
    :param dcs: DC names. ``processes``: worker processes used (1 = in this process).
    :param nodes: ids of the Ray nodes that ran episodes (empty when run locally).
    :param mlflow_run_id: the comparison's MLflow run (None if not logged), in ``tracking_uri``.
    """

    scenario: str
    scenario_source: str
    scenario_digest: str
    specs: list[PolicySpec]
    reference: str
    oracle: str | None
    episodes: int
    seed: int
    results: dict[str, list[EpisodeResult]]
    kpis: pd.DataFrame
    paired: pd.DataFrame
    gap: pd.DataFrame | None
    tiers: list[str]
    tier_min_fill_rate: dict[str, float]
    dcs: list[str]
    check_invariants: bool
    processes: int
    seconds: float
    tracking_uri: str | None = None
    mlflow_run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        """The policies' spec texts, in order: the keys of :attr:`results` and of every table."""
        return [spec.text for spec in self.specs]

    @property
    def short_labels(self) -> dict[str, str]:
        """Spec text → the short, unique label tables and plots show: a trained agent's run name
        (``tiny_smoke-tiny-s0``), a registered model's ``NAME@ALIAS``, a baseline spec as typed —
        never a 32-character run id (:func:`invalloc.evaluation.trajectories.policy_label`)."""
        from invalloc.evaluation.trajectories import spec_labels

        return spec_labels(self.specs)

    def label(self, text: str) -> str:
        """The short label of the policy with spec ``text``."""
        return self.short_labels.get(text, text)

    def episodes_text(self) -> str:
        """The episodes in a few words, for a table's title: "30 episodes from seed 3000000",
        "backtest on holdout.csv · 1 episode (seed 10000)"."""
        count = f"{self.episodes} episode{'s' if self.episodes != 1 else ''}"
        seeds = f"(seed {self.seed})" if self.episodes == 1 else f"from seed {self.seed}"
        trace = self.extra.get("demand_trace")
        prefix = f"backtest on {Path(str(trace)).name} · " if trace else ""
        return f"{prefix}{count} {seeds}"

    def demand_note(self, full_digest: bool = False) -> str | None:
        """What demand the episodes met when they replayed a trace (a backtest), else None."""
        trace = self.extra.get("demand_trace")
        if not trace:
            return None
        digest = str(self.extra.get("demand_trace_sha256", ""))
        note = (
            f"backtest: every episode replays the demand trace {trace} (sha256 "
            f"{digest if full_digest else digest[:12] + '…'}) exactly"
        )
        varies = list(self.extra.get("demand_trace_varies") or [])
        if self.episodes > 1 and varies:
            note += f"; episodes differ only in {', '.join(varies)}, drawn from each episode's seed"
        elif self.episodes == 1:
            note += "; one episode: the differences are the backtest's own, without confidence intervals"
        return note

    def episode_table(self) -> pd.DataFrame:
        """One row per policy and episode: ``policy``, ``episode``, ``seed`` and every KPI."""
        rows = [
            {"policy": label, "episode": r.episode, "seed": r.seed, **r.kpis}
            for label, results in self.results.items()
            for r in results
        ]
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready tables and settings (NaN → None)."""

        labels = self.short_labels

        def records(frame: pd.DataFrame | None) -> list[dict[str, Any]] | None:
            if frame is None:
                return None
            return [
                {
                    **({"label": labels.get(row["policy"], row["policy"])} if "policy" in row else {}),
                    **{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()},
                }
                for row in frame.to_dict(orient="records")
            ]

        return {
            "scenario": self.scenario,
            "scenario_source": self.scenario_source,
            "scenario_digest": self.scenario_digest,
            "episodes": self.episodes,
            "seeds": [self.seed, self.seed + self.episodes - 1],
            "reference": self.reference,
            "reference_label": labels.get(self.reference, self.reference),
            "oracle": self.oracle,
            "policies": [
                {"label": labels[s.text], "spec": s.text, "kind": s.kind, "description": s.describe()}
                for s in self.specs
            ],
            "demand_trace": (
                {
                    "path": self.extra["demand_trace"],
                    "sha256": self.extra.get("demand_trace_sha256"),
                    "varies_between_episodes": self.extra.get("demand_trace_varies", []),
                }
                if self.extra.get("demand_trace")
                else None
            ),
            "kpis": records(self.kpis),
            "paired": records(self.paired),
            "gap": records(self.gap),
            "processes": self.processes,
            "seconds": round(self.seconds, 3),
            "tracking_uri": self.tracking_uri,
            "mlflow_run_id": self.mlflow_run_id,
        }


def kpi_table(results: dict[str, list[EpisodeResult]], level: float = CONFIDENCE) -> pd.DataFrame:
    """Mean and ``level`` Student-t CI of every KPI per policy (long format, KPI order kept)."""
    from invalloc.sim.kpis import mean_confidence_interval

    rows = []
    for label, episodes in results.items():
        for key in episodes[0].kpis:
            values = np.array([r.kpis[key] for r in episodes])
            mean, low, high = mean_confidence_interval(values, level)
            if len(values) < 2:  # no interval from one episode (not a zero-width one)
                low = high = math.nan
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            n = len(values)
            rows.append({"policy": label, "kpi": key, "mean": mean, "ci_low": low, "ci_high": high, "std": std, "n": n})
    return pd.DataFrame(rows, columns=["policy", "kpi", "mean", "ci_low", "ci_high", "std", "n"])


def _verdict(key: str, low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "one episode: no CI"
    if low <= 0.0 <= high:
        return "no significant difference"
    direction = kpi_direction(key)
    higher = low > 0.0
    if direction == 0:
        return "higher" if higher else "lower"
    return "better" if higher == (direction > 0) else "worse"


def paired_table(results: dict[str, list[EpisodeResult]], reference: str, level: float = CONFIDENCE) -> pd.DataFrame:
    """Paired differences (policy − reference) per episode, for every KPI both policies have.

    ``t_statistic`` and ``p_value`` are the paired t-test's; with identical differences on every
    episode the test is undefined and p is 1 (all zero) or 0 (a constant non-zero difference).
    ``verdict``: ``better``/``worse`` when the CI excludes 0 (by the KPI's direction),
    ``higher``/``lower`` for KPIs that are neither, else ``no significant difference``; with one
    episode the CI, test and verdict are undefined (NaN, ``one episode: no CI``).
    """
    from scipy import stats

    from invalloc.sim.kpis import mean_confidence_interval

    columns = [
        "policy", "reference", "kpi", "mean_difference", "ci_low", "ci_high", "t_statistic", "p_value", "verdict", "n"
    ]  # fmt: skip
    rows = []
    base = results[reference]
    for label, episodes in results.items():
        if label == reference:
            continue
        for key in episodes[0].kpis:
            if key not in base[0].kpis:
                continue
            ours = np.array([r.kpis[key] for r in episodes])
            theirs = np.array([r.kpis[key] for r in base])
            differences = ours - theirs
            mean, low, high = mean_confidence_interval(differences, level)
            if len(differences) < 2:
                low = high = t_stat = p_value = math.nan
            elif np.ptp(differences) == 0.0:
                t_stat = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
                p_value = 1.0 if mean == 0.0 else 0.0
            else:
                test = stats.ttest_rel(ours, theirs)
                t_stat, p_value = float(test.statistic), float(test.pvalue)
            rows.append(
                {
                    "policy": label,
                    "reference": reference,
                    "kpi": key,
                    "mean_difference": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "t_statistic": t_stat,
                    "p_value": p_value,
                    "verdict": _verdict(key, low, high),
                    "n": len(differences),
                }
            )
    return pd.DataFrame(rows, columns=columns)


def gap_table(
    results: dict[str, list[EpisodeResult]], reference: str, oracle: str, level: float = CONFIDENCE
) -> pd.DataFrame:
    """Share of the reference-to-oracle-bound gap in mean total reward that each policy closes.

    NaN where the bound does not exceed the reference (no gap to close).
    """
    bound = np.array([r.kpis["oracle_bound"] for r in results[oracle]])
    base = np.array([r.kpis["total_reward"] for r in results[reference]])
    n = len(base)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    samples = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n)) if n > 1 else None
    tail = (1.0 - level) / 2 * 100
    rows = []
    for label, episodes in results.items():
        reward = np.array([r.kpis["total_reward"] for r in episodes])
        gap = float(bound.mean() - base.mean())
        closed = float((reward.mean() - base.mean()) / gap) if gap > 0 else math.nan
        low = high = closed if n > 1 else math.nan
        if samples is not None and gap > 0:
            gaps = bound[samples].mean(axis=1) - base[samples].mean(axis=1)
            gains = reward[samples].mean(axis=1) - base[samples].mean(axis=1)
            shares = np.divide(gains, gaps, out=np.full_like(gains, np.nan), where=gaps > 0)
            if np.isfinite(shares).any():
                low, high = (float(v) for v in np.nanpercentile(shares, [tail, 100 - tail]))
        rows.append(
            {
                "policy": label,
                "mean_reward": float(reward.mean()),
                "reference_reward": float(base.mean()),
                "oracle_bound": float(bound.mean()),
                "gap_closed": closed,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def default_reference(specs: Sequence[PolicySpec], results: dict[str, list[EpisodeResult]]) -> str:
    """The best baseline by mean total reward (the oracle is no baseline a planner can run).

    Without a baseline among the policies: the first policy that is not the oracle.
    """
    baselines = [s.text for s in specs if s.kind == "baseline" and not s.is_oracle]
    if not baselines:
        return next(s.text for s in specs if not s.is_oracle)
    means = {label: float(np.mean([r.kpis["total_reward"] for r in results[label]])) for label in baselines}
    return max(baselines, key=lambda label: means[label])  # max keeps the first of equals


__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "CONFIDENCE",
    "Comparison",
    "ComparisonError",
    "EpisodeResult",
    "KPI_DIRECTION",
    "KPI_LABELS",
    "default_reference",
    "gap_table",
    "kpi_direction",
    "kpi_label",
    "kpi_short_label",
    "kpi_table",
    "paired_table",
]
