"""Tables, plots and the HTML report of a :class:`~invalloc.evaluation.results.Comparison`.

:func:`write_report` fills a folder that holds everything — ``report.html``, the PNG plots it
shows (referenced by file name, so the folder can be zipped or moved) and the tables as CSV
— written to a temporary sibling folder first and then moved in place, so an interrupted
run never leaves a half-written report. :func:`print_tables` prints the same tables to a
terminal. Plots use matplotlib's object API (``Figure``, rendered by Agg): no pyplot state,
no display needed.
"""

from __future__ import annotations

import html
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from invalloc.evaluation.results import Comparison, ComparisonError, kpi_label, kpi_short_label
from invalloc.evaluation.trajectories import thousands_axis

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.console import Console

REPORT_FILE = "report.html"  # also marks a folder as a report that a new one may replace
FIGURE_DPI = 110  # dots per inch of the PNGs (≈ 1000 px wide at the default sizes)
EPISODES_FILE = "episodes.csv"
TABLE_FILES = {
    "kpis": "kpis.csv",
    "paired": "paired_differences.csv",
    "gap": "gap_closed.csv",
    "episodes": EPISODES_FILE,
}
FIGURE_TITLES = {
    "profit_distribution": "Profit per episode",
    "reward_difference": "Paired difference against the reference",
    "episode_profit_cash": "Cumulative profit and cash through one episode",
    "fill_rate_by_tier": "Fill rate per tier",
    "inventory_by_dc": "Inventory by DC",
}


# --------------------------------------------------------------------------- formatting
def format_number(value: float) -> str:
    """Readable money, units and rates: ``592,970``, ``12.35``, ``0.963``; ``–`` for NaN."""
    if value is None or not math.isfinite(value):
        return "–" if value is None or math.isnan(value) else ("∞" if value > 0 else "−∞")
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 1:
        return f"{value:,.2f}"
    return f"{value:.3f}"


def format_p(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _interval(mean: float, low: float, high: float) -> str:
    return f"{format_number(mean)} [{format_number(low)}, {format_number(high)}]"


def kpi_wide(comparison: Comparison, short: bool = False) -> pd.DataFrame:
    """KPI rows × policy columns (short labels), each cell ``mean [95% CI]`` (text); KPIs a policy
    lacks are empty.

    :param short: KPI names without units (for terminals).
    """
    table = comparison.kpis
    order = list(dict.fromkeys(table["kpi"]))
    currency = _currency(comparison)
    wide = pd.DataFrame({"KPI": [kpi_short_label(k) if short else kpi_label(k, currency) for k in order]})
    for label in comparison.labels:
        rows = table[table["policy"] == label].set_index("kpi")
        wide[comparison.label(label)] = [
            _interval(rows.at[k, "mean"], rows.at[k, "ci_low"], rows.at[k, "ci_high"]) if k in rows.index else ""
            for k in order
        ]
    return wide


def paired_wide(comparison: Comparison, label: str) -> pd.DataFrame:
    """One policy against the reference: KPI, difference [95% CI], p-value, verdict (text)."""
    rows = comparison.paired[comparison.paired["policy"] == label]
    return pd.DataFrame(
        {
            "KPI": [kpi_label(k, _currency(comparison)) for k in rows["kpi"]],
            "difference [95% CI]": [
                _interval(m, lo, hi)
                for m, lo, hi in zip(rows["mean_difference"], rows["ci_low"], rows["ci_high"], strict=True)
            ],
            "p (paired t)": [format_p(p) for p in rows["p_value"]],
            "verdict": list(rows["verdict"]),
        }
    )


def gap_wide(comparison: Comparison) -> pd.DataFrame | None:
    if comparison.gap is None:
        return None
    gap = comparison.gap
    return pd.DataFrame(
        {
            "policy": [comparison.label(text) for text in gap["policy"]],
            "mean total reward": [format_number(v) for v in gap["mean_reward"]],
            "gap closed [95% CI]": [
                "–" if not math.isfinite(c) else f"{c:.1%} [{lo:.1%}, {hi:.1%}]"
                for c, lo, hi in zip(gap["gap_closed"], gap["ci_low"], gap["ci_high"], strict=True)
            ],
        }
    )


# --------------------------------------------------------------------------- plots
def _colours(comparison: Comparison) -> dict[str, str]:
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    return {label: palette[i % len(palette)] for i, label in enumerate(comparison.labels)}


def _currency(comparison: Comparison) -> str:
    return str(comparison.extra.get("currency") or "currency")


def _short_labels(comparison: Comparison) -> dict[str, str]:
    """Spec text → short unique label: a learned policy's run name or ``NAME@ALIAS``, not its run id."""
    return comparison.short_labels


def _grouped_bars(ax, comparison: Comparison, prefix: str, groups: Sequence[str]) -> None:
    """Bars of ``prefix/<group>`` per policy with 95% CI whiskers."""
    colours = _colours(comparison)
    short = _short_labels(comparison)
    width = 0.8 / len(comparison.labels)
    x = np.arange(len(groups))
    table = comparison.kpis
    for i, label in enumerate(comparison.labels):
        rows = table[table["policy"] == label].set_index("kpi")
        keys = [f"{prefix}/{g}" for g in groups]
        mean = np.array([rows.at[k, "mean"] for k in keys])
        low = np.array([rows.at[k, "ci_low"] for k in keys])
        high = np.array([rows.at[k, "ci_high"] for k in keys])
        offset = x - 0.4 + width * (i + 0.5)
        error = [mean - low, high - mean]
        ax.bar(offset, mean, width, yerr=error, capsize=3, color=colours[label], label=short[label])
    ax.set_xticks(x, list(groups), rotation=20 if len(groups) > 4 else 0, ha="right" if len(groups) > 4 else "center")


def figures(comparison: Comparison) -> dict[str, Figure]:
    """The report's plots by file stem (see :data:`FIGURE_TITLES`)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    colours = _colours(comparison)
    labels = comparison.labels
    short = _short_labels(comparison)
    out: dict[str, Figure] = {}

    # Profit per episode: the spread a planner should expect, one box per policy.
    fig = Figure(figsize=(9, 0.6 * len(labels) + 1.8), layout="constrained")
    ax = fig.add_subplot()
    profits = [[r.kpis["profit"] for r in comparison.results[label]] for label in labels]
    boxes = ax.boxplot(profits, orientation="horizontal", patch_artist=True, widths=0.5, showfliers=False)
    jitter = np.random.default_rng(0)  # fixed, so the PNG is the same on every run
    for i, (label, values) in enumerate(zip(labels, profits, strict=True)):
        boxes["boxes"][i].set(facecolor=colours[label], alpha=0.35)
        ax.scatter(values, i + 1 + jitter.uniform(-0.15, 0.15, len(values)), s=10, color=colours[label], zorder=3)
    ax.set_yticks(range(1, len(labels) + 1), [short[label] for label in labels])
    thousands_axis(ax, "x")
    ax.invert_yaxis()
    ax.set_xlabel(f"profit per episode (accrual, {_currency(comparison)})")
    ax.set_title(f"{comparison.episodes} episodes, seeds {comparison.seed}–{comparison.seed + comparison.episodes - 1}")
    ax.grid(axis="x", alpha=0.3)
    out["profit_distribution"] = fig

    # Paired differences against the reference, with their 95% CIs (a forest plot).
    others = [label for label in labels if label != comparison.reference]
    fig = Figure(figsize=(9, 0.45 * len(others) + 1.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key in zip(axes, ("total_reward", "profit"), strict=True):
        rows = comparison.paired[comparison.paired["kpi"] == key].set_index("policy")
        for i, label in enumerate(others):
            m, lo, hi = rows.at[label, "mean_difference"], rows.at[label, "ci_low"], rows.at[label, "ci_high"]
            ax.errorbar(m, i, xerr=[[m - lo], [hi - m]], fmt="o", capsize=4, color=colours[label])
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel(f"{key.replace('_', ' ')}: policy − reference ({_currency(comparison)})")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(others)), [short[label] for label in others])
    for ax in axes:
        thousands_axis(ax, "x")
    axes[0].invert_yaxis()
    fig.suptitle(f"reference: {short[comparison.reference]} (95% CI of the mean paired difference)")
    out["reward_difference"] = fig

    # One episode, period by period: cumulative profit and the cash it leaves.
    fig = Figure(figsize=(9, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    for label in labels:
        trace = comparison.results[label][0].trace or {}
        if not trace:
            continue
        periods = np.arange(len(trace["profit"]))
        top.plot(periods, np.cumsum(trace["profit"]), color=colours[label], label=short[label])
        bottom.plot(periods, trace["cash"], color=colours[label], label=short[label])
    buffer = comparison.extra.get("treasury_buffer")
    if buffer:
        bottom.axhline(buffer, color="black", linestyle="--", linewidth=0.8, label="treasury buffer")
    top.set_ylabel(f"cumulative profit ({_currency(comparison)})")
    bottom.set_ylabel(f"cash at period end ({_currency(comparison)})")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_xlabel("period")
    top.set_title(f"episode 0 (seed {comparison.seed})")
    top.legend(fontsize="small")
    bottom.legend(fontsize="small")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        thousands_axis(ax)
    out["episode_profit_cash"] = fig

    # Fill rate per tier against each tier's contractual minimum.
    fig = Figure(figsize=(max(6, 1.3 * len(comparison.tiers) + 3), 4.5), layout="constrained")
    ax = fig.add_subplot()
    _grouped_bars(ax, comparison, "fill_rate_by_tier", comparison.tiers)
    for t, tier in enumerate(comparison.tiers):
        minimum = comparison.tier_min_fill_rate.get(tier, 0.0)
        if minimum > 0:
            ax.hlines(minimum, t - 0.45, t + 0.45, color="black", linestyle="--", linewidth=1.2)
    ax.set_ylabel("fill rate (share of demand served on time)")
    ax.set_ylim(0, 1.05)
    ax.set_title("mean over episodes with 95% CI; dashed: contractual minimum")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    out["fill_rate_by_tier"] = fig

    # Inventory by DC: where each policy holds its capital.
    fig = Figure(figsize=(max(6, 1.5 * len(comparison.dcs) + 3), 4.5), layout="constrained")
    ax = fig.add_subplot()
    _grouped_bars(ax, comparison, "inventory_value_by_dc", comparison.dcs)
    ax.set_ylabel(f"average on hand at standard cost ({_currency(comparison)})")
    thousands_axis(ax)
    ax.set_title("mean over episodes with 95% CI")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    out["inventory_by_dc"] = fig
    return out


# --------------------------------------------------------------------------- files
def _with_labels(comparison: Comparison, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each policy's short label in a ``label`` column before its spec (``policy``)."""
    labelled = frame.copy()
    labelled.insert(0, "label", [comparison.label(text) for text in frame["policy"]])
    return labelled


def write_tables(comparison: Comparison, folder: Path) -> list[Path]:
    """The tables as CSV (numbers unrounded) plus every policy's KPIs per episode; each row names
    its policy by short ``label`` and full spec (``policy``)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    tables = (("kpis", comparison.kpis), ("paired", comparison.paired), ("gap", comparison.gap))
    for name, frame in (*tables, ("episodes", comparison.episode_table())):
        if frame is not None:
            path = folder / TABLE_FILES[name]
            _with_labels(comparison, frame).to_csv(path, index=False)
            written.append(path)
    return written


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, border=0, classes="table")


def render_html(
    comparison: Comparison, figure_files: dict[str, str], table_files: Sequence[str], sections: str = ""
) -> str:
    """The report page; ``figure_files`` maps plot stems to the PNG names beside it; ``sections``:
    more HTML before the list of tables (the statements and trajectories of episode 0)."""
    e = html.escape
    run = (
        f"run <code>{e(comparison.mlflow_run_id)}</code> in <code>{e(comparison.tracking_uri or '')}</code>"
        if comparison.mlflow_run_id
        else "not logged"
    )
    labels = comparison.short_labels
    policies = pd.DataFrame(
        {
            "label": [labels[s.text] for s in comparison.specs],
            "spec": [s.text for s in comparison.specs],
            "what it is": [s.describe() for s in comparison.specs],
            "role": [
                "reference" if s.text == comparison.reference else ("hindsight bound" if s.is_oracle else "")
                for s in comparison.specs
            ],
        }
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Policy comparison — {e(comparison.scenario)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}"
        "th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:right}"
        "th:first-child,td:first-child{text-align:left}img{max-width:100%;margin:0.5em 0 1.5em}"
        "code{background:#f4f4f4;padding:0 3px}</style></head><body>",
        f"<h1>Policy comparison — {e(comparison.scenario)}</h1>",
        "<h2>Settings</h2><ul>",
        f"<li>scenario <code>{e(comparison.scenario)}</code> from <code>{e(comparison.scenario_source)}</code>, "
        f"sha256 <code>{e(comparison.scenario_digest)}</code></li>",
        f"<li>{comparison.episodes} episodes, seeds {comparison.seed}–{comparison.seed + comparison.episodes - 1}; "
        "episode <i>i</i> uses the same seed, hence the same demand, for every policy (common random numbers)</li>",
        *([f"<li><b>{e(note)}</b></li>"] if (note := comparison.demand_note(full_digest=True)) else []),
        f"<li>reference: <code>{e(labels[comparison.reference])}</code></li>",
        f"<li>books checked every period: {'yes' if comparison.check_invariants else 'no'}; "
        f"{comparison.processes} process(es), {comparison.seconds:,.1f} s</li>",
        f"<li>MLflow: {run}</li>",
        f"<li>written {datetime.now(UTC).isoformat(timespec='seconds')}</li></ul>",
        "<h2>Policies</h2>",
        "<p>Tables and plots name each policy by its label; the spec is what was given to <code>--policy</code>.</p>",
        _table_html(policies),
        "<h2>KPIs — mean [95% CI] over episodes</h2>",
        _table_html(kpi_wide(comparison)),
        f"<h2>Paired differences against <code>{e(labels[comparison.reference])}</code></h2>",
        "<p>Policy − reference on the same episodes: mean [95% CI], paired t-test (two-sided, not adjusted "
        "for the number of KPIs and policies). <i>better</i>/<i>worse</i> when the CI excludes 0.</p>",
    ]
    for label in comparison.labels:
        if label != comparison.reference:
            parts += [f"<h3><code>{e(labels[label])}</code></h3>", _table_html(paired_wide(comparison, label))]
    gap = gap_wide(comparison)
    if gap is not None:
        parts += [
            "<h2>Gap to the hindsight bound closed</h2>",
            f"<p>(mean reward − reference) ÷ (mean oracle bound − reference); the bound averages "
            f"{format_number(float(comparison.gap['oracle_bound'].iloc[0]))} and the reference "
            f"{format_number(float(comparison.gap['reference_reward'].iloc[0]))}. "
            "95% CI: paired bootstrap over episodes.</p>",
            _table_html(gap),
        ]
    parts.append("<h2>Plots</h2>")
    for stem, file in figure_files.items():
        parts.append(f'<h3>{e(FIGURE_TITLES.get(stem, stem))}</h3><img src="{e(file)}" alt="{e(stem)}">')
    if sections:
        parts.append(sections)
    parts.append("<h2>Tables as CSV</h2><ul>")
    parts += [f'<li><a href="{e(name)}">{e(name)}</a></li>' for name in table_files]
    parts.append("</ul></body></html>")
    return "\n".join(parts)


def render_folder(comparison: Comparison, folder: Path) -> dict[str, Figure]:
    """Write the report, PNGs and CSVs into ``folder`` (must exist); returns the figures drawn."""
    drawn = figures(comparison)
    names = {}
    for stem, fig in drawn.items():
        names[stem] = f"{stem}.png"
        fig.savefig(folder / names[stem], dpi=FIGURE_DPI)
    tables = write_tables(comparison, folder)
    from invalloc.evaluation.episode_reports import write_comparison_sections

    sections = write_comparison_sections(comparison, folder)  # statements and trajectories of episode 0
    (folder / REPORT_FILE).write_text(
        render_html(comparison, names, [p.name for p in tables], sections), encoding="utf-8"
    )
    return drawn


def check_out_dir(out_dir: Path) -> None:
    """``out_dir`` may be written: missing, empty, or an earlier report (which is replaced).

    :raises ComparisonError: naming the folder, before any episode runs.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ComparisonError(f"--out {out_dir}: is a file, not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / REPORT_FILE).is_file():
        raise ComparisonError(f"--out {out_dir}: folder is not empty and holds no earlier report; choose another")
    parent = out_dir.resolve().parent
    if not parent.is_dir():
        raise ComparisonError(f"--out {out_dir}: parent folder {parent} does not exist")


def write_report(comparison: Comparison, out_dir: Path, rendered: Path | None = None) -> Path:
    """Write the report folder and return the path of its ``report.html``.

    The folder is built beside ``out_dir`` and moved in place only when complete; an earlier
    report in ``out_dir`` is replaced. ``rendered``: a folder :func:`render_folder` already
    filled for this comparison (the one logged to MLflow), copied instead of drawn again.
    Raises :class:`ComparisonError` if ``out_dir`` holds other files (see
    :func:`check_out_dir`), ``OSError`` if it cannot be written.
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    parent = out_dir.resolve().parent
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
    old: Path | None = None
    try:
        if rendered is not None and (Path(rendered) / REPORT_FILE).is_file():
            shutil.copytree(rendered, staging, dirs_exist_ok=True)
        else:
            render_folder(comparison, staging)
        os.chmod(staging, 0o755)  # mkdtemp makes it private; a report is meant to be shared
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=parent))
            os.replace(out_dir, old / "report")
        try:
            os.replace(staging, out_dir)
        except OSError:
            if old is not None:  # put the earlier report back
                os.replace(old / "report", out_dir)
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return out_dir / REPORT_FILE


# --------------------------------------------------------------------------- terminal
def print_tables(comparison: Comparison, console: Console | None = None) -> None:
    """Print the KPI, paired-difference and gap tables with rich (to standard output by default)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text  # cells as Text: "[1.2, 3.4]" and spec texts are not markup

    console = console or Console(emoji=False)
    title = f"{comparison.scenario} · {comparison.episodes_text()} · mean [95% CI]"
    table = Table(title=Text(title))
    wide = kpi_wide(comparison, short=True)
    for column in wide.columns:
        table.add_column(column, justify="left" if column == "KPI" else "right", overflow="fold")
    for row in wide.itertuples(index=False):
        table.add_row(*(Text(str(cell)) for cell in row))
    console.print(table)
    paired = Table(
        title=Text(f"paired difference against {comparison.label(comparison.reference)} (policy − reference)")
    )
    for column in ("policy", "KPI", "difference [95% CI]", "p", "verdict"):
        paired.add_column(column, justify="right" if column in ("difference [95% CI]", "p") else "left")
    for row in comparison.paired.itertuples(index=False):
        style = {"better": "green", "worse": "red"}.get(row.verdict, "")
        paired.add_row(
            Text(comparison.label(row.policy)),
            Text(kpi_short_label(row.kpi)),
            Text(_interval(row.mean_difference, row.ci_low, row.ci_high)),
            Text(format_p(row.p_value)),
            Text(row.verdict, style=style),
        )
    console.print(paired)
    gap = gap_wide(comparison)
    if gap is not None:
        closed = Table(title="share of the reference-to-oracle-bound gap closed")
        for column in gap.columns:
            closed.add_column(column, justify="left" if column == "policy" else "right")
        for row in gap.itertuples(index=False):
            closed.add_row(*(Text(str(cell)) for cell in row))
        console.print(closed)
    note = comparison.demand_note()
    if note:
        console.print(Text(note))


__all__ = [
    "FIGURE_TITLES",
    "REPORT_FILE",
    "check_out_dir",
    "figures",
    "format_number",
    "print_tables",
    "render_folder",
    "render_html",
    "write_report",
    "write_tables",
]
