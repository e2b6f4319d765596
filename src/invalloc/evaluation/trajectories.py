"""Pictures of what a policy did: per-episode trajectories of chosen SKUs, and an overview.

From one episode's period records (:class:`~invalloc.sim.simulator.PeriodReport`) and its books
(:class:`~invalloc.sim.statements.EpisodeBooks`, for the stock in transit) :func:`trajectory_frame`
builds one row per period × DC × SKU: on hand and in transit at the close, purchase orders and
transfers into the DC as requested by the policy and as executed after the rules, the units
unserved (backlog at the close, or sales lost in the period), the company's cash at the close
against the treasury buffer, and the rule interventions. Every plot is drawn from such a frame
and written with it as CSV beside the PNG (:func:`write_trajectories`):

* ``trajectory_<sku>.png``: four panels over the periods — on hand (solid) and in transit
  (dashed) per DC; orders requested (outline) against executed (bars), ▼ where a rule cut a
  request of this SKU; units short; cash against the treasury buffer, with a tick per period in
  which any rule intervened;
* ``overview.png``: small multiples of the top SKUs by revenue (on hand, in transit and units
  short, summed over the chosen DCs).

Policies are labelled short (:func:`policy_label`: a run's name, a model's name@alias), never
by a 32-character run id. Plots use matplotlib's object API (Agg, no display).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from invalloc.sim.network import Network
    from invalloc.sim.simulator import PeriodReport
    from invalloc.sim.statements import EpisodeBooks

#: SKUs in the overview and SKUs with a detailed plot when none are chosen (top by revenue).
OVERVIEW_SKUS = 9
DETAIL_SKUS = 3
FIGURE_DPI = 110
#: A request counts as cut by a rule when executed falls short of it by more than this (units).
CUT_TOLERANCE = 1e-9
_LABEL_WIDTH = 40  # fits a registered model with its alias, e.g. invalloc-policy-retail@champion


class TrajectoryError(ValueError):
    """A chosen SKU or DC that the scenario does not have; one line naming the option."""


def policy_label(spec_text: str, name: str | None = None, width: int = _LABEL_WIDTH) -> str:
    """A short label for a policy: a trained agent's or rule table's ``name`` (its run name,
    ``NAME@ALIAS``) rather than its 32-character run id; a baseline spec as typed, its params
    file by name alone (``base_stock@tuned.yaml``), shortened to ``width`` characters."""
    text = spec_text
    if spec_text.startswith(("run:", "runs:/")):
        run_id = spec_text.split(":", 1)[1].removeprefix("/").split("/")[0]
        text = name if name and name != spec_text else f"run {run_id[:8]}"
    elif spec_text.startswith("models:/"):
        text = spec_text.removeprefix("models:/")
    elif spec_text.startswith("rules:"):
        text = f"rules {Path(spec_text.removeprefix('rules:')).name}"
    elif "@" in spec_text:  # a baseline with a params file: the file's name, not its folders
        name, _, rest = spec_text.partition("@")
        file, colon, overrides = rest.partition(":")
        text = f"{name}@{Path(file).name}{colon}{overrides}"
    return text if len(text) <= width else text[: width - 1] + "…"


def unique_labels(labels: Sequence[str]) -> list[str]:
    """``labels`` with repeats numbered (``a``, ``a (2)``), so every policy keeps its own files."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def spec_labels(specs: Sequence) -> dict[str, str]:
    """Spec text → short unique label for compared policies (``PolicySpec``: ``text``, ``name``)."""
    labels = unique_labels([policy_label(spec.text, spec.name) for spec in specs])
    return {spec.text: label for spec, label in zip(specs, labels, strict=True)}


def file_stem(label: str) -> str:
    """A file-name-safe form of a label."""
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", label).strip("_") or "policy"


# --------------------------------------------------------------------------- data
def sku_revenue(reports: Sequence[PeriodReport], network: Network) -> np.ndarray:
    """Sales value of the units served per SKU over the episode (S,), money."""
    price = network.tier_price()  # (T, S)
    return np.sum([(r.served * price).sum(axis=0) for r in reports], axis=0) if reports else np.zeros(network.n_skus)


def demand_value(reports: Sequence[PeriodReport], network: Network) -> np.ndarray:
    """Value of the episode's demand at list price per SKU (S,): the revenue at full service,
    the same for every policy on the same episode (common random numbers)."""
    price = network.tier_price()
    return np.sum([(r.demand * price).sum(axis=0) for r in reports], axis=0) if reports else np.zeros(network.n_skus)


def top_skus(value: np.ndarray, network: Network, n: int) -> list[str]:
    """The ``n`` SKUs with the largest ``value`` (ties in SKU order)."""
    order = np.argsort(-np.asarray(value), kind="stable")[:n]
    return [network.skus[s] for s in order]


def choose(names: Sequence[str] | None, known: Sequence[str], option: str, what: str) -> list[str] | None:
    """Split comma-separated choices and check each is known; None when none were given.

    :raises TrajectoryError: one line naming the option and the unknown value.
    """
    if not names:
        return None
    chosen: list[str] = []
    for item in names:
        for name in str(item).split(","):
            name = name.strip()
            if not name:
                continue
            if name not in known:
                shown = ", ".join(known[:8]) + (" …" if len(known) > 8 else "")
                raise TrajectoryError(f"{option} {name}: unknown {what} (the scenario has {shown})")
            if name not in chosen:
                chosen.append(name)
    if not chosen:
        raise TrajectoryError(f"{option}: give at least one {what}")
    return chosen


def _decision_map(network: Network) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per decision (n_decisions,): kind code (0 order, 1 transfer, 2 allocate), DC it concerns, SKU."""
    kind = np.full(network.n_decisions, -1)
    dc = np.full(network.n_decisions, -1)
    sku = np.full(network.n_decisions, -1)
    for block_kind, row, columns, where in network.decision_blocks:
        if block_kind == "order":
            code, location = 0, network.purchase_location[row]
        elif block_kind == "transfer":
            code, location = 1, network.transfer_destination[row]
        else:
            code, location = 2, network.sales_location[row]
        kind[where] = code
        dc[where] = location
        sku[where] = columns
    return kind, dc, sku


def unmet_column(network: Network) -> str:
    """``lost_units`` under lost sales (lost in the period), else ``backlog_units`` (at the close)."""
    return "lost_units" if network.scenario.episode.unmet_demand == "lost_sales" else "backlog_units"


def trajectory_frame(
    reports: Sequence[PeriodReport],
    books: EpisodeBooks,
    network: Network,
    skus: Sequence[str],
    dcs: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per period × DC × SKU for ``skus`` at ``dcs`` (default: every DC).

    Columns: ``period``, ``dc``, ``sku``, ``on_hand``, ``in_transit`` (units at the close),
    ``orders_requested``/``orders_executed`` (purchase orders into the DC), ``transfers_requested``/
    ``transfers_executed`` (transfers into the DC), ``cut`` (1 if a rule cut a request of this
    DC × SKU), then per SKU: ``demand``, ``served``, ``backlog_units`` or ``lost_units``, and per
    period: ``cash``, ``treasury_buffer``, ``rule_interventions`` (decisions changed by the rules).
    """
    dcs = list(dcs) if dcs else list(network.locations)
    s_index = [network.skus.index(s) for s in skus]
    d_index = [network.locations.index(d) for d in dcs]
    kind, decision_dc, decision_sku = _decision_map(network)
    unmet = unmet_column(network)
    buffer = float(network.scenario.finance.treasury_buffer)
    rows = []
    for t, report in enumerate(reports):
        requested, executed = report.decision.requested, report.decision.executed
        cut = requested - executed > CUT_TOLERANCE
        demand = report.demand.sum(axis=0)
        served = report.served.sum(axis=0)
        short = report.short.sum(axis=0)
        interventions = report.decision.intervention_count
        for d, dc in zip(d_index, dcs, strict=True):
            here = decision_dc == d
            for s, sku in zip(s_index, skus, strict=True):
                mine = here & (decision_sku == s)
                orders = mine & (kind == 0)
                transfers = mine & (kind == 1)
                rows.append(
                    (
                        report.period,
                        dc,
                        sku,
                        float(report.on_hand[d, s]),
                        float(books.in_transit_units[t, d, s]),
                        float(requested[orders].sum()),
                        float(executed[orders].sum()),
                        float(requested[transfers].sum()),
                        float(executed[transfers].sum()),
                        int(cut[mine & (kind != 2)].any()),
                        float(demand[s]),
                        float(served[s]),
                        float(short[s]),
                        float(report.cash),
                        buffer,
                        int(interventions),
                    )
                )
    columns = [
        "period",
        "dc",
        "sku",
        "on_hand",
        "in_transit",
        "orders_requested",
        "orders_executed",
        "transfers_requested",
        "transfers_executed",
        "cut",
        "demand",
        "served",
        unmet,
        "cash",
        "treasury_buffer",
        "rule_interventions",
    ]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- plots
def thousands_axis(ax, axis: str = "y") -> None:
    """Tick labels with thousands separators (``600,000``, not ``6e5``); small values keep two
    significant digits (``0.25``), so close ticks never print the same label."""
    from matplotlib.ticker import FuncFormatter

    def format_tick(value: float, _position: int) -> str:
        if not math.isfinite(value):
            return ""
        return f"{value:,.0f}" if abs(value) >= 10 or value == 0 else f"{value:,.2g}"

    getattr(ax, f"{axis}axis").set_major_formatter(FuncFormatter(format_tick))


def _headroom(ax, share: float = 1.35) -> None:
    """Room above the data for the legend (upper left), so it hides no line or marker."""
    low, high = ax.get_ylim()
    ax.set_ylim(low, low + (high - low) * share)


def _periods_axis(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=12))


def sku_figure(frame: pd.DataFrame, sku: str, title: str, currency: str) -> Figure:
    """The four-panel trajectory of one SKU (rows of ``frame`` for it, every DC in it)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    rows = frame[frame["sku"] == sku]
    unmet = "lost_units" if "lost_units" in frame.columns else "backlog_units"
    dcs = list(dict.fromkeys(rows["dc"]))
    palette = colormaps["tab10"].colors
    fig = Figure(figsize=(10, 10), layout="constrained")
    stock, orders, short, cash = fig.subplots(4, 1, sharex=True, height_ratios=(3, 2, 1.5, 2))
    for i, dc in enumerate(dcs):
        at = rows[rows["dc"] == dc]
        colour = palette[i % len(palette)]
        stock.plot(at["period"], at["on_hand"], color=colour, label=f"{dc} on hand")
        stock.plot(at["period"], at["in_transit"], color=colour, linestyle="--", label=f"{dc} in transit")
    stock.set_ylabel("units")
    stock.legend(fontsize="small", ncol=min(3, max(1, len(dcs))), loc="upper left")
    stock.set_title("stock at each close")

    by_period = rows.groupby("period", sort=True)
    totals = by_period[["orders_requested", "orders_executed", "transfers_requested", "transfers_executed"]].sum()
    periods = totals.index.to_numpy()
    orders.bar(periods, totals["orders_executed"], width=0.8, color="tab:blue", alpha=0.7, label="orders executed")
    orders.step(
        periods, totals["orders_requested"], where="mid", color="black", linewidth=1.0, label="orders requested"
    )
    if (totals["transfers_requested"] > 0).any() or (totals["transfers_executed"] > 0).any():
        orders.plot(periods, totals["transfers_executed"], "o", color="tab:green", ms=3, label="transfers in executed")
    cut = by_period["cut"].max()
    flagged = cut[cut > 0].index.to_numpy()
    if flagged.size:
        top = np.maximum(totals.loc[flagged, "orders_requested"], totals.loc[flagged, "transfers_requested"])
        orders.plot(flagged, top, "v", color="tab:red", ms=6, label="cut by a rule")
    orders.set_ylabel("units per period")
    orders.legend(fontsize="small", ncol=4, loc="upper left")
    orders.set_title("replenishment into the chosen DCs: requested by the policy against executed")

    per_sku = by_period[[unmet, "demand"]].first()
    short.bar(per_sku.index, per_sku[unmet], width=0.8, color="tab:orange")
    short.set_ylabel("units")
    short.set_title("lost sales in the period" if unmet == "lost_units" else "backlog at the close")

    company = by_period[["cash", "treasury_buffer", "rule_interventions"]].first()
    cash.plot(company.index, company["cash"], color="black", label="cash at the close")
    buffer = float(company["treasury_buffer"].iloc[0]) if len(company) else float("nan")
    if math.isfinite(buffer):
        cash.axhline(buffer, color="tab:red", linestyle="--", linewidth=1.0, label="treasury buffer")
    ruled = company.index[company["rule_interventions"] > 0].to_numpy()
    if ruled.size:
        cash.plot(
            ruled,
            np.full(ruled.size, 0.0),
            "|",
            color="tab:purple",
            ms=8,
            transform=cash.get_xaxis_transform(),
            label="any rule intervened",
        )
    cash.set_ylabel(currency)
    cash.set_xlabel("period")
    cash.legend(fontsize="small", ncol=3, loc="upper left")
    cash.set_title("company cash against the treasury buffer")
    for ax in (stock, orders, cash):
        _headroom(ax)
    for ax in (stock, orders, short, cash):
        ax.grid(alpha=0.3)
        thousands_axis(ax)
        _periods_axis(ax)
    fig.suptitle(title)
    return fig


def overview_figure(frame: pd.DataFrame, skus: Sequence[str], title: str) -> Figure:
    """Small multiples: per SKU on hand, in transit and units short over the periods (summed over DCs)."""
    from matplotlib.figure import Figure

    unmet = "lost_units" if "lost_units" in frame.columns else "backlog_units"
    n = max(1, len(skus))
    columns = min(3, n)
    lines = math.ceil(n / columns)
    fig = Figure(figsize=(4 * columns, 2.8 * lines + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(lines, columns, sharex=True, squeeze=False)).ravel()
    for ax, sku in zip(axes, skus, strict=False):
        rows = frame[frame["sku"] == sku].groupby("period", sort=True)
        stock = rows[["on_hand", "in_transit"]].sum()
        short = rows[unmet].first()
        ax.plot(stock.index, stock["on_hand"], color="tab:blue", label="on hand")
        ax.plot(stock.index, stock["in_transit"], color="tab:blue", linestyle="--", label="in transit")
        ax.bar(short.index, short.to_numpy(), width=0.8, color="tab:orange", alpha=0.7, label=unmet.replace("_", " "))
        ax.set_title(sku, fontsize="medium")
        _headroom(ax, 1.15)
        ax.grid(alpha=0.3)
        thousands_axis(ax)
        _periods_axis(ax)
    for ax in axes[len(skus) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize="x-small", loc="upper left")
    fig.supxlabel("period")
    fig.supylabel("units")
    fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- files
def draw_episode(
    frame: pd.DataFrame,
    overview_skus: Sequence[str],
    detail_skus: Sequence[str],
    label: str,
    currency: str,
    episode_text: str,
) -> dict[str, tuple[Figure, pd.DataFrame]]:
    """The figures of one policy's episode with the rows each is drawn from, by file stem."""
    out: dict[str, tuple[Figure, pd.DataFrame]] = {}
    rows = frame[frame["sku"].isin(list(overview_skus))]
    out["overview"] = (
        overview_figure(rows, overview_skus, f"{label} · {episode_text} · top {len(overview_skus)} SKUs by revenue"),
        rows,
    )
    for sku in detail_skus:
        rows = frame[frame["sku"] == sku]
        out[f"trajectory_{file_stem(sku)}"] = (
            sku_figure(rows, sku, f"{label} · {episode_text} · {sku}", currency),
            rows,
        )
    return out


def save_figures(drawn: dict[str, tuple[Figure, pd.DataFrame]], folder: Path, prefix: str = "") -> list[Path]:
    """Each figure as PNG with its rows as CSV beside it (same stem); returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, (figure, rows) in drawn.items():
        png = folder / f"{prefix}{stem}.png"
        figure.savefig(png, dpi=FIGURE_DPI)
        csv = png.with_suffix(".csv")
        rows.to_csv(csv, index=False)
        written += [png, csv]
    return written


def episode_plots(
    reports: Sequence[PeriodReport],
    books: EpisodeBooks,
    network: Network,
    label: str,
    skus: Sequence[str] | None = None,
    dcs: Sequence[str] | None = None,
    episode_text: str = "episode 0",
) -> dict[str, tuple[Figure, pd.DataFrame]]:
    """The overview of the top SKUs by revenue and a trajectory per chosen SKU (default: the top
    :data:`DETAIL_SKUS`), for one policy's episode."""
    revenue = sku_revenue(reports, network)
    overview = top_skus(revenue, network, min(OVERVIEW_SKUS, network.n_skus))
    detail = list(skus) if skus else overview[:DETAIL_SKUS]
    wanted = list(dict.fromkeys([*overview, *detail]))
    frame = trajectory_frame(reports, books, network, wanted, dcs)
    return draw_episode(frame, overview, detail, label, str(network.scenario.currency), episode_text)


__all__ = [
    "DETAIL_SKUS",
    "OVERVIEW_SKUS",
    "TrajectoryError",
    "choose",
    "demand_value",
    "draw_episode",
    "episode_plots",
    "overview_figure",
    "policy_label",
    "save_figures",
    "sku_figure",
    "sku_revenue",
    "spec_labels",
    "thousands_axis",
    "top_skus",
    "trajectory_frame",
    "unique_labels",
]
