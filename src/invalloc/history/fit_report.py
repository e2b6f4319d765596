"""The fit report of :func:`invalloc.history.fit.fit_demand`: ``fit_report.json`` and a
self-contained ``fit_report.html``.

The HTML states how the demand was fitted (method, criterion, censoring, hold-out), counts the
verdicts, shows one plot of the largest series (most units sold: its sales, the chosen
model's mean over the history, and the hold-out periods with the refitted model's forecast)
as an embedded PNG, and one table row per channel × SKU: the chosen model, its parameters at
the forecast origin, the hold-out error against the naive forecast and a one-word verdict.
Plots use matplotlib's object API (``Figure``, rendered by Agg): no pyplot state, no display.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from invalloc.history.fit import DemandFit, SeriesFit

JSON_FILE = "fit_report.json"
HTML_FILE = "fit_report.html"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; }
th { background: #f3f3f3; text-align: left; position: sticky; top: 0; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.better { color: #1a7f37; } .even { color: #9a6700; } .worse { color: #cf222e; }
"""


def _number(value: float | None, digits: int = 1) -> str:
    """Thousands separators; blank for None."""
    if value is None:
        return ""
    return f"{value:,.{digits}f}"


def _largest(fit: DemandFit) -> SeriesFit | None:
    fitted = [s for s in fit.series if s.model != "none"]
    return max(fitted, key=lambda s: float(s.history.sum())) if fitted else None


def _plot_png(fit: DemandFit, series: SeriesFit) -> bytes:
    """Sales, the fitted mean and the hold-out (actuals, refitted forecast) of one series."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    figure = Figure(figsize=(10, 5), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    periods = np.arange(series.history.size)
    h = series.holdout_forecast.size
    ax.plot(periods, series.history, color="#555", linewidth=1, label="units sold")
    label = "fitted mean" if fit.method == "model" else "history mean (bootstrap)"
    ax.plot(periods, series.fitted, color="#0969da", linewidth=2, label=f"{label}: {series.name}")
    if series.stockout.any():
        ax.scatter(
            periods[series.stockout], series.history[series.stockout], marker="v", color="#cf222e", zorder=3,
            label="stockout (censored)",
        )  # fmt: skip
    if h:
        start = series.history.size - h
        ax.axvspan(start - 0.5, series.history.size - 0.5, color="#f6e7c1", alpha=0.6, label="hold-out")
        ax.scatter(periods[start:], series.history[start:], color="#222", s=14, zorder=3, label="hold-out actuals")
        ax.plot(periods[start:], series.holdout_forecast, color="#bf8700", linewidth=2, linestyle="--",
                label="forecast refitted without the hold-out")  # fmt: skip
    ax.set_title(f"Largest series: {series.channel} × {series.sku} ({_number(float(series.history.sum()), 0)} units)")
    ax.set_ylabel("units per period")
    labels = fit.period_labels
    ax.set_xlabel(f"period ({fit.period_days}-day buckets)")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda value, _: labels[int(value)] if 0 <= value < len(labels) and value == int(value) else "")
    )
    ax.set_xlim(-0.5, series.history.size - 0.5)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=3, frameon=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _row(series: SeriesFit) -> str:
    season = series.seasonality
    holdout = series.holdout or {}
    cells = [
        (html.escape(series.channel), ""),
        (html.escape(series.sku), ""),
        (html.escape(series.name), ""),
        (_number(float(series.history.sum()), 0), "n"),
        (_number(series.mean, 2), "n"),
        (_number(series.std, 2), "n"),
        (f"{series.trend * 100:+.2f}" if series.trend_fitted else "", "n"),
        (f"{season['amplitude']:.2f}" if season else "", "n"),
        (f"{season['phase']:.1f}" if season else "", "n"),
        (str(series.censored) if series.censored else "", "n"),
        (_number(holdout.get("model_mae"), 2), "n"),
        (_number(holdout.get("naive_mae"), 2), "n"),
        (f"{holdout['ratio']:.2f}" if holdout.get("ratio") is not None else "", "n"),
        (f'<span class="{series.verdict}">{series.verdict}</span>', ""),
    ]
    return (
        "<tr>"
        + "".join(f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>" for text, cls in cells)
        + "</tr>"
    )


def _html(fit: DemandFit, png: bytes | None, largest: SeriesFit | None) -> str:
    summary = fit.to_dict()
    verdicts = ", ".join(f"{count:,} {verdict}" for verdict, count in summary["verdicts"].items())
    models: dict[str, int] = {}
    for s in fit.series:
        models[s.name] = models.get(s.name, 0) + 1
    model_counts = ", ".join(f"{count:,} {name}" for name, count in sorted(models.items(), key=lambda kv: -kv[1]))
    header = [
        "channel", "SKU", "chosen model", "units sold", "mean at origin", "std at origin", "trend %/period",
        "season amplitude", "season phase", "stockout periods", "hold-out MAE", "naive MAE", "MAE ratio", "verdict",
    ]  # fmt: skip
    naive = next((s.holdout["naive"] for s in fit.series if s.holdout), "n/a")
    method = (
        f"maximum likelihood per series; criterion: {html.escape(summary['criterion'])}"
        if fit.method == "model"
        else "moving-block bootstrap of the history (nothing fitted)"
    )
    image = ""
    if png is not None and largest is not None:
        image = (
            f'<figure><img alt="largest series" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
            f"<figcaption>Largest series: {html.escape(largest.channel)} × {html.escape(largest.sku)} "
            f"({_number(float(largest.history.sum()), 0)} units sold)</figcaption></figure>"
        )
    rows = "\n".join(_row(s) for s in fit.series)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Demand fit: {html.escape(Path(fit.source).name)}</title>
<style>{_STYLE}</style></head><body>
<h1>Demand fit of {html.escape(fit.source)}</h1>
<ul>
<li>History: {fit.periods:,} periods of {fit.period_days} days,
{html.escape(fit.labels[0])} … {html.escape(fit.labels[1])}; {len(fit.series):,} channel × SKU series.
Period 0 of the fitted demand is the first period after the history.</li>
<li>Method: {method}.</li>
<li>Censoring: {html.escape(summary["censoring"])}.</li>
<li>Chosen models: {html.escape(model_counts)}.</li>
<li>Hold-out: the last {fit.holdout_periods:,} periods, refitted without them; naive forecast: {html.escape(naive)}.
Verdicts: {html.escape(verdicts)} (better / worse: model MAE more than 5 % below / above the naive MAE).</li>
</ul>
{image}
<h2>Series</h2>
<table>
<thead><tr>{"".join(f"<th>{h}</th>" for h in header)}</tr></thead>
<tbody>
{rows}
</tbody></table>
<p>Mean and standard deviation are per period at the forecast origin; the trend is the relative change of
the mean per period; the season is a sine of period {fit.seasonal_period} with the phase in periods.
Every candidate's AIC is in {JSON_FILE}.</p>
</body></html>
"""


def write_fit_report(fit: DemandFit, out_dir: str | Path) -> list[Path]:
    """Write ``fit_report.json`` and ``fit_report.html`` into ``out_dir`` (created if needed).

    Returns:
        the two paths written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    largest = _largest(fit)
    png = _plot_png(fit, largest) if largest is not None else None
    json_path, html_path = out_dir / JSON_FILE, out_dir / HTML_FILE
    payload = fit.to_dict()
    if largest is not None:
        payload["plotted_series"] = {"channel": largest.channel, "sku": largest.sku}
    json_path.write_text(json.dumps(payload, indent=2, allow_nan=False), encoding="utf-8")
    html_path.write_text(_html(fit, png, largest), encoding="utf-8")
    return [json_path, html_path]
