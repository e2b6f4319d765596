"""Read a demand trace CSV ``period,channel,sku,quantity`` and report every problem with its row.

One reader serves the scenario check (``demand.trace``) and the simulator (``--demand-trace``),
so both accept and refuse the same files. A trace is refused when a row has a period that is
not a whole number ≥ 0, an unknown channel or SKU, a quantity that is not a finite number in
0 … :data:`~invalloc.config.schema.MAX_UNITS`, or repeats an earlier row's period, channel and
SKU (rows are not summed); and when a period of the episode has no row at all (periods are
numbered from 0: a trace numbered from 1 would silently give period 0 no demand). Write a
period without demand as explicit zero rows.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from invalloc.config.schema import MAX_PERIODS, MAX_UNITS

#: Largest demand trace read (about 3 million rows).
MAX_TRACE_BYTES = 100 * 1024 * 1024
#: Row problems listed before the rest are summarised in one line.
MAX_ROW_PROBLEMS = 5
REQUIRED_COLUMNS = ("period", "channel", "sku", "quantity")


def _period(text: str | None) -> tuple[int | None, str | None]:
    text = (text or "").strip()
    try:
        return int(text), None
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None, f"period {text!r} is not a whole number"
    if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
        return int(value), None
    return None, f"period {text!r} is not a whole number"


def _quantity(text: str | None) -> tuple[float | None, str | None]:
    text = (text or "").strip()
    try:
        value = float(text)
    except ValueError:
        return None, f"quantity {text!r} is not a number"
    if not math.isfinite(value):
        return None, f"quantity {text} is not a finite number"
    if value < 0 or value > MAX_UNITS:
        return None, f"quantity {text} is outside 0 … {MAX_UNITS:g} units"
    return value, None


def read_trace(path: Path, channels: list[str], skus: list[str], periods: int) -> tuple[np.ndarray | None, list[str]]:
    """Demand per period, channel and SKU ``(periods, C, S)`` in units, or None and the problems.

    Rows of periods at or after ``periods`` are checked and then ignored. Each problem is one
    line without the file name, e.g. ``row 4 (line 5): quantity inf is not a finite number``.
    """
    path = Path(path)
    try:
        if path.is_dir():
            return None, ["is a folder, not a CSV file"]
        if not path.is_file():
            return None, ["file not found"]
        size = path.stat().st_size
        if size > MAX_TRACE_BYTES:
            return None, [f"{size / 2**20:.0f} MB is larger than the {MAX_TRACE_BYTES / 2**20:.0f} MB limit"]
        channel_index = {c: i for i, c in enumerate(channels)}
        sku_index = {s: i for i, s in enumerate(skus)}
        demand = np.zeros((periods, len(channels), len(skus)))
        covered = np.zeros(periods, dtype=bool)
        first_row: dict[tuple[int, str, str], int] = {}
        problems: list[str] = []
        rows = 0
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = [name.strip() for name in reader.fieldnames or []]
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                return None, [f"lacks the column(s) {', '.join(missing)} (needs {','.join(REQUIRED_COLUMNS)})"]
            reader.fieldnames = columns
            for row_number, row in enumerate(reader, start=1):
                rows += 1
                where = f"row {row_number} (line {reader.line_num})"
                if None in row or None in row.values():
                    problems.append(
                        f"{where}: has {len(columns) + len(row.get(None) or [])} fields or fewer than "
                        f"the header's {len(columns)}"
                    )
                    continue
                row_problems = []
                period, problem = _period(row["period"])
                if problem:
                    row_problems.append(problem)
                elif period < 0:
                    row_problems.append(f"period {period} is negative (periods are numbered from 0)")
                elif period >= MAX_PERIODS:
                    row_problems.append(f"period {period} is beyond the longest episode ({MAX_PERIODS:,} periods)")
                channel, sku = row["channel"].strip(), row["sku"].strip()
                if channel not in channel_index:
                    row_problems.append(f"no such channel {channel!r}")
                if sku not in sku_index:
                    row_problems.append(f"no such sku {sku!r}")
                quantity, problem = _quantity(row["quantity"])
                if problem:
                    row_problems.append(problem)
                if not row_problems:
                    key = (period, channel, sku)
                    if key in first_row:
                        row_problems.append(
                            f"duplicate of row {first_row[key]} (period {period}, channel {channel}, sku {sku}); "
                            "give each period, channel and SKU once"
                        )
                    else:
                        first_row[key] = row_number
                        if period < periods:
                            demand[period, channel_index[channel], sku_index[sku]] = quantity
                            covered[period] = True
                problems += [f"{where}: {p}" for p in row_problems]
    except (OSError, csv.Error) as error:
        return None, [f"cannot be read as CSV ({getattr(error, 'strerror', None) or error})"]
    except UnicodeDecodeError as error:
        return None, [f"not UTF-8 text ({error.reason})"]
    if len(problems) > MAX_ROW_PROBLEMS:
        problems = problems[:MAX_ROW_PROBLEMS] + [f"... and {len(problems) - MAX_ROW_PROBLEMS} more row problems"]
    if rows == 0:
        problems.append(f"has no rows; the episode needs periods 0–{periods - 1}")
    elif not problems and not covered.all():
        gaps = np.flatnonzero(~covered)
        last = int(np.flatnonzero(covered)[-1]) if covered.any() else -1
        if last < periods - 1 and covered[0]:
            problems.append(
                f"covers periods 0–{last} but the horizon is {periods} periods (0–{periods - 1}); "
                "extend the trace or shorten episode.horizon"
            )
        else:
            shown = ", ".join(str(int(p)) for p in gaps[:5]) + (" …" if len(gaps) > 5 else "")
            hint = " (periods are numbered from 0)" if gaps[0] == 0 else ""
            problems.append(
                f"period(s) {shown} have no rows but the episode has {periods} periods (0–{periods - 1}){hint}; "
                "write periods without demand as zero rows"
            )
    return (None, problems) if problems else (demand, [])


def read_history(path: Path, channels: list[str], skus: list[str]) -> tuple[np.ndarray | None, list[str]]:
    """A whole history CSV ``period,channel,sku,quantity`` (periods 0 … P−1, P taken from the
    file's largest period) as ``(P, C, S)`` units, or None and the problems (as :func:`read_trace`)."""
    path = Path(path)
    last = -1
    try:
        if path.is_file() and path.stat().st_size <= MAX_TRACE_BYTES:
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
                if "period" in reader.fieldnames:
                    for row in reader:
                        period, _ = _period(row.get("period"))
                        if period is not None and 0 <= period < MAX_PERIODS:
                            last = max(last, period)
    except (OSError, csv.Error, UnicodeDecodeError):
        pass  # read_trace reports it
    return read_trace(path, channels, skus, max(last + 1, 1))
