"""``invalloc rules monitor``: does a rule table still fit the world it now runs in?

Input: the active table (a rule table directory, verified as on every load) and a decision
log from production — one row per period with the features the table saw, the decisions
taken and optionally the realised KPIs (:mod:`invalloc.rules.decision_log` documents the
columns; ``invalloc simulate --policy rules:DIR --decision-log PATH`` writes them). Four
checks, each against what the manifest's ``monitoring`` block recorded at export:

- **coverage** — the share of logged states with at least one feature outside the range seen
  at export (extraction and evaluation states): there the rules extrapolate;
- **hit rates** — each rule's share of the logged periods (the rule the table decides for the
  logged features) against its share on the held-out evaluation episodes at export. Drift is
  the population stability index ``PSI = Σ (o − e) ln(o / e)`` over rules (shares smoothed by
  half a count per rule), with a Monte Carlo p-value under "the log is drawn from the expected
  shares" (multinomial, :data:`PSI_SAMPLES` draws, fixed seed) and, beside it, Pearson's
  chi-square (:func:`scipy.stats.chisquare`). It alerts when PSI exceeds the threshold *and*
  the p-value is below :data:`SIGNIFICANCE`: a short log's PSI is large by chance alone
  (about rules / periods), so size alone never alerts;
- **KPI drift** — the relative difference of the log's per-period KPIs (fill rate as served
  over demand; reward per period) from those of the table at export;
- **overrides** — periods whose logged decisions differ from what the table decides for the
  logged features (manual overrides, or another table).

A table exported before monitoring existed has no ``monitoring`` block: coverage and KPI drift
are then not checked (reported as such) and hit rates are compared with the table's
``support`` (its share of the extraction states).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from invalloc.rules.decision_log import KPI_PREFIX
from invalloc.rules.table import RuleTable

if TYPE_CHECKING:
    import pandas as pd

#: p-value below which a hit-rate PSI above its threshold alerts.
SIGNIFICANCE = 0.01
#: Multinomial draws of the PSI's null distribution (seeded: the same log gives the same report).
PSI_SAMPLES = 4000
PSI_SEED = 0
#: KPIs whose drift alerts (others are reported): the service and the objective.
ALERT_KPIS = ("fill_rate", "reward")
#: Files of a report folder; ``monitor.json`` also marks a folder a new report may replace.
REPORT_JSON, REPORT_HTML, REPORT_PLOT = "monitor.json", "monitor.html", "hit_rates.png"
#: Logged decisions within this relative distance of the table's are the table's.
OVERRIDE_TOLERANCE = 1e-9
#: Exit code of a monitor that found drift beyond a threshold (bad input exits 2).
ALERT_EXIT_CODE = 3


class MonitorError(ValueError):
    """A decision log, threshold or report folder that cannot be used; one line naming it."""


@dataclass(frozen=True)
class Thresholds:
    """When ``rules monitor`` alerts (each a finite number ≥ 0).

    :param max_out_of_range: largest share of logged states outside the export's feature ranges.
    :param max_psi: largest PSI of the rules' hit rates (0.1 is commonly read as a moderate
        shift, 0.25 as a large one); it alerts only when also significant.
    :param max_kpi_drift: largest relative drift of the fill rate and of the reward per period.
    :param max_overrides: largest share of periods whose decisions differ from the table's.
    """

    max_out_of_range: float = 0.05
    max_psi: float = 0.25
    max_kpi_drift: float = 0.10
    max_overrides: float = 0.05

    def problems(self) -> list[str]:
        out = []
        for name, value in asdict(self).items():
            option = "--" + name.replace("_", "-")
            if not math.isfinite(value) or value < 0:
                out.append(f"{option} {value}: must be a finite number ≥ 0")
            elif name in ("max_out_of_range", "max_overrides") and value > 1:
                out.append(f"{option} {value}: a share, from 0 to 1")
        return out


# ------------------------------------------------------------------ reading the log
def read_decision_log(path: Path) -> pd.DataFrame:
    """The log at ``path`` (``.csv`` or ``.parquet``).

    :raises MonitorError: a missing, unreadable or empty file, or another suffix.
    """
    import pandas as pd

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise MonitorError(f"--log {path}: must end in .csv or .parquet")
    if path.is_dir():
        raise MonitorError(f"--log {path}: is a folder, not a decision log")
    if not path.is_file():
        raise MonitorError(f"--log {path}: no such file")
    try:
        frame = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path, low_memory=False)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise MonitorError(f"--log {path}: cannot be read ({' '.join(str(error).split())[:200]})") from None
    except Exception as error:  # pyarrow's own errors (ArrowInvalid is a ValueError; others are not)
        if type(error).__module__.startswith(("pyarrow", "pandas")):
            raise MonitorError(f"--log {path}: cannot be read ({' '.join(str(error).split())[:200]})") from None
        raise
    if frame.empty:
        raise MonitorError(f"--log {path}: no rows (one row per period the table decided)")
    duplicated = sorted({str(c) for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicated:
        raise MonitorError(f"--log {path}: column {duplicated[0]} appears more than once")
    return frame


def _numbers(frame: pd.DataFrame, columns: list[str], path: Path, allow: str = "finite") -> np.ndarray:
    """``frame[columns]`` as float64 (N, C); raises naming the first bad column and row (1-based, as in the file)."""
    import pandas as pd

    values = np.empty((len(frame), len(columns)))
    for j, column in enumerate(columns):
        converted = pd.to_numeric(frame[column], errors="coerce")
        bad = converted.isna() & frame[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise MonitorError(
                f"--log {path}: column {column}, row {row + 1}: {str(frame[column].iloc[row])[:40]!r} is not a number"
            )
        values[:, j] = converted.to_numpy(dtype=np.float64)
    missing = ~np.isfinite(values)
    if missing.any():
        row, j = (int(i) for i in np.argwhere(missing)[0])
        what = "empty" if math.isnan(values[row, j]) else f"{values[row, j]}"
        raise MonitorError(f"--log {path}: column {columns[j]}, row {row + 1}: {what} (a finite number is needed)")
    return values


# ------------------------------------------------------------------ the checks
def _reference(manifest: dict, table: RuleTable) -> tuple[dict | None, str | None]:
    """The manifest's ``monitoring`` block checked against the table, or (None, why not)."""
    block = manifest.get("monitoring")
    if block is None:
        return None, "the manifest has no monitoring block (exported before monitoring); re-export the table"
    where = "manifest.json: field monitoring"
    if not isinstance(block, dict):
        raise MonitorError(f"{where} must be an object")
    ranges, hits, kpis = block.get("feature_ranges"), block.get("hit_rates"), block.get("kpis")
    if not isinstance(ranges, dict) or sorted(ranges) != sorted(table.feature_names):
        raise MonitorError(f"{where}.feature_ranges must give [min, max] for each of the table's features")
    for name, pair in ranges.items():
        if not (isinstance(pair, list) and len(pair) == 2 and all(_is_number(v) for v in pair) and pair[0] <= pair[1]):
            raise MonitorError(f"{where}.feature_ranges.{name} must be [min, max] with min ≤ max")
    if not isinstance(hits, dict) or sorted(hits) != sorted(table.rule_ids):
        raise MonitorError(f"{where}.hit_rates must give a share for each of the table's rules")
    if not all(_is_number(v) and 0 <= v <= 1 for v in hits.values()):
        raise MonitorError(f"{where}.hit_rates: each share must be from 0 to 1")
    if not isinstance(kpis, dict) or not all(
        isinstance(v, dict) and _is_number(v.get("mean")) and _is_number(v.get("std")) for v in kpis.values()
    ):
        raise MonitorError(f"{where}.kpis must map each KPI to {{mean, std}}")
    if not isinstance(block.get("periods"), int) or isinstance(block.get("periods"), bool) or block["periods"] < 1:
        raise MonitorError(f"{where}.periods must be a whole number ≥ 1")
    return block, None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def coverage(features: np.ndarray, names: list[str], ranges: dict) -> dict:
    """Share of states (rows) with a feature outside its range, and the share per feature."""
    low = np.array([ranges[n][0] for n in names])
    high = np.array([ranges[n][1] for n in names])
    outside = (features < low) | (features > high)  # (N, F)
    by_feature = {
        name: {
            "share_outside": float(outside[:, j].mean()),
            "range_at_export": [float(low[j]), float(high[j])],
            "logged_range": [float(features[:, j].min()), float(features[:, j].max())],
        }
        for j, name in enumerate(names)
    }
    return {
        "share_outside": float(outside.any(axis=1).mean()),
        "states_outside": int(outside.any(axis=1).sum()),
        "by_feature": by_feature,
    }


def _psi(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """PSI of shares ``observed`` (..., K) against ``expected`` (K,)."""
    return ((observed - expected) * np.log(observed / expected)).sum(axis=-1)


def hit_rate_drift(rules: np.ndarray, table: RuleTable, expected_shares: np.ndarray, reference_n: int) -> dict:
    """Observed against expected hit rates per rule; PSI with its Monte Carlo p-value; chi-square.

    :param rules: (N,) index of the rule decided for each logged state.
    :param expected_shares: (K,) each rule's share at export (of ``reference_n`` states).
    """
    from scipy import stats

    k, n = len(table), len(rules)
    counts = np.bincount(rules, minlength=k)
    # Half a count per rule on both sides: a rule never seen on one side still has a finite log ratio.
    expected = (expected_shares * reference_n + 0.5) / (reference_n + 0.5 * k)
    observed = (counts + 0.5) / (n + 0.5 * k)
    psi = float(_psi(observed, expected))
    rng = np.random.default_rng(PSI_SEED)
    draws = rng.multinomial(n, expected, size=PSI_SAMPLES)
    null = _psi((draws + 0.5) / (n + 0.5 * k), expected)
    p_value = float((1 + np.count_nonzero(null >= psi - 1e-12)) / (1 + PSI_SAMPLES))
    chi = stats.chisquare(counts, expected * n) if k > 1 else None
    return {
        "rules": [
            {
                "rule_id": rid,
                "expected": float(expected_shares[r]),
                "observed": float(counts[r] / n),
                "periods": int(counts[r]),
            }
            for r, rid in enumerate(table.rule_ids)
        ],
        "psi": psi,
        "psi_p_value": p_value,
        "psi_null_95th_percentile": float(np.percentile(null, 95)),
        "chi_square": float(chi.statistic) if chi is not None else 0.0,
        "chi_square_p_value": float(chi.pvalue) if chi is not None else 1.0,
        "degrees_of_freedom": k - 1,
    }


def kpi_drift(frame: pd.DataFrame, path: Path, reference: dict) -> dict:
    """Per-period KPI means of the log against the export's (relative drift), for the KPIs both have."""
    columns = [c for c in frame.columns if isinstance(c, str) and c.startswith(KPI_PREFIX)]
    names = [c.removeprefix(KPI_PREFIX) for c in columns if c.removeprefix(KPI_PREFIX) in reference]
    if not names:
        return {}
    values = _numbers(frame, [KPI_PREFIX + name for name in names], path)
    observed = dict(zip(names, values.mean(axis=0), strict=True))
    if "fill_rate" in names and "demand_units" in names and "served_units" in names:
        demand, served = values[:, names.index("demand_units")].sum(), values[:, names.index("served_units")].sum()
        observed["fill_rate"] = served / demand if demand > 0 else 1.0
    drift = {}
    for name in names:
        expected = float(reference[name]["mean"])
        value = float(observed[name])
        # Relative to the export's value; undefined (None) when that was 0 and the log's is not.
        relative = (value - expected) / abs(expected) if expected != 0 else (0.0 if value == 0 else None)
        drift[name] = {"expected": expected, "observed": value, "relative_drift": relative}
    return drift


def overrides(frame: pd.DataFrame, path: Path, table: RuleTable, rules: np.ndarray) -> dict | None:
    """Periods whose logged outputs differ from the table's decision; None when the log has no outputs."""
    present = [name for name in table.output_names if name in frame.columns]
    if not present:
        return None
    if len(present) != len(table.output_names):
        missing = [name for name in table.output_names if name not in frame.columns]
        raise MonitorError(
            f"--log {path}: has decision columns but not {', '.join(missing[:3])}"
            f"{' …' if len(missing) > 3 else ''} (give every output of the table, or none)"
        )
    logged = _numbers(frame, table.output_names, path)
    decided = table.values[rules]
    differs = np.abs(logged - decided) > OVERRIDE_TOLERANCE * np.maximum(1.0, np.abs(decided))
    rows = differs.any(axis=1)
    examples = []
    for row in np.flatnonzero(rows)[:20]:
        j = int(np.flatnonzero(differs[row])[0])
        examples.append(
            {
                "row": int(row) + 1,
                **{key: _plain(frame[key].iloc[row]) for key in ("episode", "period") if key in frame.columns},
                "output": table.output_names[j],
                "logged": float(logged[row, j]),
                "table": float(decided[row, j]),
                "outputs_differing": int(differs[row].sum()),
            }
        )
    mismatched = None
    if "rule_id" in frame.columns:
        decided_ids = np.array(table.rule_ids, dtype=object)[rules]
        mismatched = int((frame["rule_id"].astype(str).to_numpy() != decided_ids).sum())
    return {
        "share": float(rows.mean()),
        "periods": int(rows.sum()),
        "by_output": {
            name: int(differs[:, j].sum()) for j, name in enumerate(table.output_names) if differs[:, j].any()
        },
        "examples": examples,
        "rule_id_mismatches": mismatched,
    }


def _plain(value: Any) -> Any:
    """A numpy scalar as a JSON value."""
    return value.item() if hasattr(value, "item") else value


def monitor(table: RuleTable, manifest: dict, frame: pd.DataFrame, path: Path, thresholds: Thresholds) -> dict:
    """Run the four checks (module docstring) on the log ``frame`` read from ``path``.

    :returns: the report (JSON-ready): ``coverage``, ``hit_rates``, ``kpis``, ``overrides``,
        ``checks`` (each with ``value``, ``threshold``, ``passed``, ``note``), ``status``
        (``pass`` or ``alert``) and ``reason`` (one line).
    :raises MonitorError: a log without the table's feature columns or with values that are
        not finite numbers, or a malformed ``monitoring`` block.
    """
    from invalloc.rules.manifest import content_digest

    missing = [name for name in table.feature_names if name not in frame.columns]
    if missing:
        raise MonitorError(
            f"--log {path}: missing feature column(s) {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}"
        )
    features = _numbers(frame, table.feature_names, path)
    reference, why_not = _reference(manifest, table)
    rules = table.decide(features)
    checks: list[dict] = []

    covered = coverage(features, table.feature_names, reference["feature_ranges"]) if reference else None
    if covered is None:
        checks.append(_check("coverage", None, thresholds.max_out_of_range, f"not checked: {why_not}"))
    else:
        worst = max(covered["by_feature"].items(), key=lambda item: item[1]["share_outside"])
        checks.append(
            _check(
                "coverage",
                covered["share_outside"],
                thresholds.max_out_of_range,
                f"{covered['share_outside']:.1%} of logged states outside the feature ranges seen at export "
                f"(most: {worst[0]}, {worst[1]['share_outside']:.1%})",
            )
        )

    if reference:
        expected = np.array([reference["hit_rates"][rid] for rid in table.rule_ids], dtype=float)
        source, reference_n = "monitoring.hit_rates (the table's held-out evaluation episodes)", reference["periods"]
    else:
        expected = np.asarray(table.support, dtype=float)
        source = "the rules' support (extraction states; the manifest has no monitoring block)"
        extraction = manifest.get("extraction")
        states = extraction.get("states") if isinstance(extraction, dict) else None
        reference_n = states if isinstance(states, int) and not isinstance(states, bool) and states > 0 else len(frame)
    total = expected.sum()
    expected = expected / total if total > 0 else np.full(len(table), 1 / len(table))
    hits = {"expected_from": source, **hit_rate_drift(rules, table, expected, reference_n)}
    significant = hits["psi_p_value"] < SIGNIFICANCE
    hit_check = _check(
        "hit_rates",
        hits["psi"],
        thresholds.max_psi,
        f"hit-rate PSI {hits['psi']:.3f} (p = {hits['psi_p_value']:.4f}; chi-square {hits['chi_square']:.1f}, "
        f"p = {hits['chi_square_p_value']:.3g})",
    )
    if not hit_check["passed"] and not significant:
        hit_check["passed"] = True
        hit_check["note"] += f"; within chance for {len(frame)} periods (p ≥ {SIGNIFICANCE})"
    checks.append(hit_check)

    drift = kpi_drift(frame, path, reference["kpis"]) if reference else {}
    alerting = {name: item for name, item in drift.items() if name in ALERT_KPIS and item["relative_drift"] is not None}
    if not alerting:
        note = f"not checked: {why_not}" if not reference else "not checked: the log has no kpi.fill_rate or kpi.reward"
        checks.append(_check("kpi_drift", None, thresholds.max_kpi_drift, note))
    else:
        name, item = max(alerting.items(), key=lambda pair: abs(pair[1]["relative_drift"]))
        checks.append(
            _check(
                "kpi_drift",
                abs(item["relative_drift"]),
                thresholds.max_kpi_drift,
                f"{name.replace('_', ' ')} per period {item['observed']:,.4g} against {item['expected']:,.4g} "
                f"at export ({item['relative_drift']:+.1%})",
            )
        )

    overridden = overrides(frame, path, table, rules)
    if overridden is None:
        checks.append(_check("overrides", None, thresholds.max_overrides, "not checked: the log has no decisions"))
    else:
        checks.append(
            _check(
                "overrides",
                overridden["share"],
                thresholds.max_overrides,
                f"{overridden['periods']} of {len(frame)} periods ({overridden['share']:.1%}) decided otherwise "
                "than the table",
            )
        )

    failed = [c for c in checks if not c["passed"]]
    reason = (
        "; ".join(f"{c['name']}: {c['note']} > {c['threshold']:g}" for c in failed)
        if failed
        else "all checks pass: " + "; ".join(c["note"] for c in checks if c["value"] is not None)
    )
    return {
        "status": "alert" if failed else "pass",
        "reason": reason,
        "table": {
            "name": manifest.get("name"),
            "scenario": (manifest.get("scenario") or {}).get("name"),
            "rules": len(table),
            "content_sha256": content_digest(manifest),
            "review_status": (manifest.get("review") or {}).get("status"),
        },
        "log": {
            "path": str(path),
            "periods": len(frame),
            "episodes": int(frame["episode"].nunique()) if "episode" in frame.columns else None,
        },
        "thresholds": asdict(thresholds),
        "checks": checks,
        "coverage": covered,
        "hit_rates": hits,
        "kpis": drift or None,
        "overrides": overridden,
    }


def _check(name: str, value: float | None, threshold: float, note: str) -> dict:
    return {
        "name": name,
        "value": value,
        "threshold": threshold,
        "passed": value is None or value <= threshold,
        "note": note,
    }


# ------------------------------------------------------------------ the report folder
def check_report_dir(out: Path) -> None:
    """``out`` may receive a report: missing, empty, or an earlier monitor report (replaced).

    :raises MonitorError: naming the folder.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MonitorError(f"--report {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / REPORT_JSON).is_file():
        raise MonitorError(f"--report {out}: folder is not empty and holds no earlier monitor report; choose another")
    parent = out.resolve().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise MonitorError(f"--report {out}: {parent} is a file, not a folder")


def write_report(report: dict, out: Path) -> Path:
    """``monitor.json``, ``monitor.html`` and ``hit_rates.png`` into ``out`` (replaced whole); returns the HTML."""
    from invalloc.rules.manifest import staged_directory

    check_report_dir(out)
    with staged_directory(Path(out)) as staging:
        staging.chmod(0o755)
        (staging / REPORT_JSON).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
        _plot(report, staging / REPORT_PLOT)
        (staging / REPORT_HTML).write_text(render_html(report))
    return Path(out) / REPORT_HTML


def _plot(report: dict, path: Path) -> None:
    """Expected and observed hit rate per rule; share of states outside the export's range per feature."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rules = report["hit_rates"]["rules"]
    covered = report["coverage"]
    panels = 2 if covered else 1
    figure, axes = plt.subplots(1, panels, figsize=(6 * panels, max(3.0, 0.28 * len(rules) + 1.5)), squeeze=False)
    ax = axes[0, 0]
    y = np.arange(len(rules))
    ax.barh(y - 0.2, [r["expected"] for r in rules], height=0.4, label="expected (at export)", color="#9ecae1")
    ax.barh(y + 0.2, [r["observed"] for r in rules], height=0.4, label="observed (log)", color="#3182bd")
    ax.set_yticks(y, [r["rule_id"] for r in rules], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("share of periods")
    ax.set_title(f"rule hit rates — PSI {report['hit_rates']['psi']:.3f}")
    ax.legend(fontsize=8)
    if covered:
        ax = axes[0, 1]
        names = list(covered["by_feature"])
        shares = [covered["by_feature"][n]["share_outside"] for n in names]
        ax.barh(np.arange(len(names)), shares, color=["#de2d26" if s > 0 else "#bdbdbd" for s in shares])
        ax.set_yticks(np.arange(len(names)), names, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of logged states outside the range seen at export")
        ax.set_title(f"coverage — {covered['share_outside']:.1%} of states outside")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def render_html(report: dict) -> str:
    """A self-contained page (the plot beside it) with the verdict, the checks and the tables."""
    from html import escape

    def table(header: list[str], rows: list[list[Any]]) -> str:
        head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def number(value: Any, pattern: str = "{:.4g}") -> str:
        return "–" if value is None else pattern.format(value)

    info, log = report["table"], report["log"]
    episodes = "" if log["episodes"] is None else f", {log['episodes']} episodes"
    status = report["status"].upper()
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>rule table monitor</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}"
        ".alert{color:#b30000}.pass{color:#006400}</style></head><body>",
        f"<h1>Monitor of {escape(str(info['name']))} ({escape(str(info['scenario']))})</h1>",
        f"<p class='{report['status']}'><b>{status}</b>: {escape(report['reason'])}</p>",
        f"<p>{info['rules']} rules, review status {escape(str(info['review_status']))}, content sha256 "
        f"<code>{info['content_sha256'][:12]}…</code>; log <code>{escape(log['path'])}</code>: {log['periods']} "
        f"periods{episodes}.</p>",
        "<h2>Checks</h2>",
        table(
            ["check", "value", "threshold", "passed", "what it says"],
            [
                [c["name"], number(c["value"]), f"{c['threshold']:g}", "yes" if c["passed"] else "NO", c["note"]]
                for c in report["checks"]
            ],
        ),
        f"<img src='{REPORT_PLOT}' alt='hit rates and coverage' style='max-width:100%'>",
        "<h2>Rule hit rates</h2>",
        f"<p>Expected from {escape(report['hit_rates']['expected_from'])}. PSI {report['hit_rates']['psi']:.4f} "
        f"(Monte Carlo p = {report['hit_rates']['psi_p_value']:.4f}; 95% of logs of this length drawn from the "
        f"expected shares have PSI below {report['hit_rates']['psi_null_95th_percentile']:.4f}); chi-square "
        f"{report['hit_rates']['chi_square']:.2f} on {report['hit_rates']['degrees_of_freedom']} degrees of freedom, "
        f"p = {report['hit_rates']['chi_square_p_value']:.3g}.</p>",
        table(
            ["rule", "expected share", "observed share", "periods"],
            [
                [r["rule_id"], f"{r['expected']:.3f}", f"{r['observed']:.3f}", r["periods"]]
                for r in report["hit_rates"]["rules"]
            ],
        ),
    ]
    if report["coverage"]:
        parts += [
            "<h2>Coverage</h2>",
            table(
                ["feature", "range at export", "logged range", "share outside"],
                [
                    [name, f"[{v['range_at_export'][0]:g}, {v['range_at_export'][1]:g}]",
                     f"[{v['logged_range'][0]:g}, {v['logged_range'][1]:g}]", f"{v['share_outside']:.1%}"]
                    for name, v in report["coverage"]["by_feature"].items()
                ],
            ),
        ]  # fmt: skip
    if report["kpis"]:
        parts += [
            "<h2>KPIs per period</h2>",
            table(
                ["KPI", "at export", "logged", "relative drift"],
                [
                    [name, f"{v['expected']:,.4g}", f"{v['observed']:,.4g}", number(v["relative_drift"], "{:+.1%}")]
                    for name, v in report["kpis"].items()
                ],
            ),
        ]
    if report["overrides"]:
        o = report["overrides"]
        parts += [
            "<h2>Overrides</h2>",
            f"<p>{o['periods']} periods ({o['share']:.1%}) decided otherwise than the table"
            + ("" if o["rule_id_mismatches"] is None else f"; {o['rule_id_mismatches']} logged another rule id")
            + ".</p>",
            table(
                ["row", "episode", "period", "output", "logged", "table", "outputs differing"],
                [
                    [e["row"], e.get("episode", "–"), e.get("period", "–"), e["output"], f"{e['logged']:g}",
                     f"{e['table']:g}", e["outputs_differing"]]
                    for e in o["examples"]
                ],
            ),
        ]  # fmt: skip
    parts.append("</body></html>\n")
    return "\n".join(parts)


__all__ = [
    "ALERT_EXIT_CODE",
    "MonitorError",
    "Thresholds",
    "check_report_dir",
    "coverage",
    "hit_rate_drift",
    "kpi_drift",
    "monitor",
    "overrides",
    "read_decision_log",
    "render_html",
    "write_report",
]
