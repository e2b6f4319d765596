"""Read a long-format sales history and report every problem as ``file:row:column: message``.

The history is one CSV row per period, channel and SKU::

    date,channel,sku,quantity,stockout
    2024-01-01,stores,SKU001,12,0
    2024-01-01,online,SKU001,3,1

Columns (names are case-sensitive; a column not listed here is an error, so a typo such as
``qty`` cannot be silently ignored):

- ``date`` *or* ``period`` (exactly one of them): an ISO date ``YYYY-MM-DD`` (the first day of
  a weekly or daily bucket) or a whole-number period ``0, 1, 2, …``. Dates must lie on one
  calendar: weekly (7 days apart, all on the same weekday) or daily (1 day apart).
- ``channel``, ``sku``: ids from the master data (``channels.csv``, ``products.csv``).
- ``quantity``: units sold in the bucket, a finite number ≥ 0 (fractions allowed).
- ``stockout`` (optional): ``1``/``true``/``yes`` when sales in that bucket were cut short by a
  stockout (the sales are *censored*: true demand was at least the quantity sold); ``0``,
  ``false``, ``no`` or empty otherwise.

A missing row means zero sales (ERP exports usually leave them out), but every bucket of the
calendar between the first and the last must have at least one row: a week with no row at all
is far more often a lost export than a week in which nothing sold anywhere, so it is refused
(write such a week as explicit zero rows). A repeated ``(date, channel, sku)`` is refused too
(rows are not summed).

Rows are numbered as a spreadsheet shows them: the header is row 1, the first data row is
row 2. Columns are named by their header, e.g. ``sales.csv:14:quantity: '-3' is negative``.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from invalloc.config.schema import MAX_PERIODS, MAX_UNITS

#: Largest sales history read.
MAX_HISTORY_BYTES = 200 * 1024 * 1024
#: Row problems listed per file before the rest are summarised in one line.
MAX_ROW_PROBLEMS = 20
#: Columns a history must have besides ``date`` or ``period``.
REQUIRED_COLUMNS = ("channel", "sku", "quantity")
#: Columns a history may have.
OPTIONAL_COLUMNS = ("stockout",)
#: Days per bucket assumed for a history numbered by ``period`` (weekly, the usual planning bucket).
DEFAULT_PERIOD_DAYS = 7

_TRUE = frozenset({"1", "true", "yes", "y", "t", "x"})
_FALSE = frozenset({"", "0", "false", "no", "n", "f"})


@dataclass(frozen=True)
class SalesHistory:
    """Units sold per period, channel and SKU, with the periods whose sales a stockout censored.

    Attributes:
        labels: period labels in order (ISO dates of the buckets' first days, or period
            numbers as text), length ``P``.
        channels: channel ids, length ``C`` (the master data's order).
        skus: SKU ids, length ``S`` (the master data's order).
        quantity: ``(P, C, S)`` float, units sold; a row missing from the file is 0 sales.
        stockout: ``(P, C, S)`` bool, True where the row's ``stockout`` flag was set: the sales
            of that period understate demand.
        period_days: days per period (7 for weekly history, 1 for daily).
        source: the file, as named in messages.
    """

    labels: tuple[str, ...]
    channels: tuple[str, ...]
    skus: tuple[str, ...]
    quantity: np.ndarray
    stockout: np.ndarray
    period_days: int
    source: str

    @property
    def periods(self) -> int:
        """Number of periods ``P``."""
        return len(self.labels)

    def window(self, start: int, stop: int) -> SalesHistory:
        """The periods ``[start, stop)`` (Python slice semantics, negative indices allowed)."""
        window = slice(start, stop)
        return SalesHistory(
            labels=self.labels[window],
            channels=self.channels,
            skus=self.skus,
            quantity=self.quantity[window].copy(),
            stockout=self.stockout[window].copy(),
            period_days=self.period_days,
            source=self.source,
        )


def _parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.date() if moment.time() == dt.time(0) and moment.tzinfo is None else None


def _parse_period(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value.is_integer() and abs(value) < 2**53 else None


def _parse_quantity(text: str) -> tuple[float | None, str | None]:
    try:
        value = float(text)
    except ValueError:
        return None, f"{text!r} is not a number" if text else "is empty (write 0 for no sales)"
    if not math.isfinite(value):
        return None, f"{text!r} is not a finite number"
    if value < 0:
        return None, f"{text!r} is negative (returns are not sales; net them out or leave them out)"
    if value > MAX_UNITS:
        return None, f"{text!r} is above the largest quantity {MAX_UNITS:g} units"
    return value, None


def _bucket_days(dates: list[dt.date]) -> int:
    """7 when most consecutive distinct dates are a week apart (or multiples), else 1."""
    if len(dates) < 2:
        return DEFAULT_PERIOD_DAYS
    steps = [(b - a).days for a, b in zip(dates, dates[1:], strict=False)]
    weekly = sum(step % 7 == 0 for step in steps)
    return 7 if weekly * 2 >= len(steps) else 1


def read_sales(
    path: Path,
    channels: Sequence[str],
    skus: Sequence[str],
    *,
    period_days: int = DEFAULT_PERIOD_DAYS,
) -> tuple[SalesHistory | None, list[str]]:
    """Read a sales history CSV for the given master data; the history, or None and the problems.

    Args:
        path: the CSV (UTF-8, an Excel byte-order mark is fine).
        channels: the channel ids the rows may name; the history's channel axis, in this order.
        skus: the SKU ids the rows may name; the history's SKU axis, in this order.
        period_days: days per period of a history numbered by ``period`` (a dated history's
            bucket is read from its dates).

    Returns:
        ``(history, [])``, or ``(None, problems)`` with every problem as one line
        ``file:row:column: message`` (``file: message`` for a problem of the whole file,
        ``file:column: message`` for one of a column, such as a gap in the calendar).
    """
    path = Path(path)
    source = str(path)
    channel_index = {c: i for i, c in enumerate(channels)}
    sku_index = {s: i for i, s in enumerate(skus)}
    problems: list[str] = []
    row_problems: list[str] = []
    # One entry per good row: (period key, channel, sku, quantity, stockout).
    good: list[tuple[object, int, int, float, bool]] = []
    first_line: dict[tuple[object, str, str], int] = {}
    try:
        if path.is_dir():
            return None, [f"{source}: is a folder, not a CSV file"]
        if not path.is_file():
            return None, [f"{source}: file not found"]
        size = path.stat().st_size
        if size > MAX_HISTORY_BYTES:
            return None, [
                f"{source}: {size / 2**20:.0f} MB is larger than the {MAX_HISTORY_BYTES / 2**20:.0f} MB limit"
            ]
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                return None, [f"{source}: is empty; needs the header date,channel,sku,quantity[,stockout]"]
            header = [name.strip() for name in header]
            for position, name in enumerate(header, start=1):
                allowed = ("date", "period", *REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
                if not name:
                    problems.append(f"{source}:1:column {position}: has no name")
                elif name not in allowed:
                    problems.append(f"{source}:1:{name}: unknown column (the columns are {', '.join(allowed)})")
                elif header.index(name) != position - 1:
                    problems.append(f"{source}:1:{name}: column given twice")
            if "date" in header and "period" in header:
                problems.append(f"{source}:1:period: has both a date and a period column; give one of them")
            elif "date" not in header and "period" not in header:
                problems.append(f"{source}:1: missing column date (or period)")
            problems += [
                f"{source}:1: missing required column {name}" for name in REQUIRED_COLUMNS if name not in header
            ]
            if problems:
                return None, problems
            time_column = "date" if "date" in header else "period"
            column = {name: header.index(name) for name in header}
            for fields in reader:
                line = reader.line_num
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # blank line
                if len(fields) != len(header):
                    row_problems.append(f"{source}:{line}: has {len(fields)} fields, the header has {len(header)}")
                    continue
                values = {name: fields[index].strip() for name, index in column.items()}
                here: list[str] = []
                key: object = None
                text = values[time_column]
                if time_column == "date":
                    key = _parse_date(text)
                    if key is None:
                        hint = (
                            " (a whole number here belongs in a period column, not date)"
                            if _parse_period(text) is not None
                            else ""
                        )
                        here.append(f"{source}:{line}:date: {text!r} is not an ISO date YYYY-MM-DD{hint}")
                else:
                    key = _parse_period(text)
                    if key is None:
                        hint = " (dates belong in a date column, not period)" if _parse_date(text) else ""
                        here.append(f"{source}:{line}:period: {text!r} is not a whole number{hint}")
                    elif not 0 <= key < MAX_PERIODS:
                        here.append(f"{source}:{line}:period: {key} is outside 0 … {MAX_PERIODS - 1}")
                        key = None
                channel, sku = values["channel"], values["sku"]
                if channel not in channel_index:
                    here.append(
                        f"{source}:{line}:channel: unknown channel {channel!r}"
                        + (f" (the channels are {', '.join(channels)})" if len(channels) <= 10 else "")
                    )
                if sku not in sku_index:
                    here.append(f"{source}:{line}:sku: unknown SKU {sku!r} (not in the products)")
                quantity, problem = _parse_quantity(values["quantity"])
                if problem:
                    here.append(f"{source}:{line}:quantity: {problem}")
                flag = values.get("stockout", "").lower()
                if flag not in _TRUE and flag not in _FALSE:
                    here.append(f"{source}:{line}:stockout: {values['stockout']!r} is not a flag (use 1 or 0)")
                if key is not None and channel in channel_index and sku in sku_index:
                    earlier = first_line.get((key, channel, sku))
                    if earlier is not None:
                        here.append(
                            f"{source}:{line}:{time_column}: duplicate of row {earlier} "
                            f"({time_column} {text}, channel {channel}, sku {sku}); give each once"
                        )
                    else:
                        first_line[(key, channel, sku)] = line
                if here:
                    row_problems += here
                else:
                    good.append((key, channel_index[channel], sku_index[sku], quantity, flag in _TRUE))
    except csv.Error as error:
        return None, [f"{source}: cannot be read as CSV ({error})"]
    except OSError as error:
        return None, [f"{source}: cannot be read ({error.strerror or error})"]
    except UnicodeDecodeError as error:
        return None, [f"{source}: not UTF-8 text ({error.reason}); save it as CSV UTF-8"]
    if len(row_problems) > MAX_ROW_PROBLEMS:
        row_problems = row_problems[:MAX_ROW_PROBLEMS] + [
            f"{source}: ... and {len(row_problems) - MAX_ROW_PROBLEMS} more row problems"
        ]
    problems += row_problems
    if not good and not problems:
        problems.append(f"{source}: has no rows")
    if problems:
        return None, problems

    keys = sorted({row[0] for row in good})
    if time_column == "date":
        days = _bucket_days(keys)
        first = keys[0]
        off = [k for k in keys if (k - first).days % days]
        if off:
            shown = ", ".join(k.isoformat() for k in off[:5]) + (" …" if len(off) > 5 else "")
            weekday = first.strftime("%A")
            return None, [
                f"{source}:date: {shown} not on the weekly calendar of the first date {first} "
                f"(weekly buckets all start on a {weekday})"
            ]
        count = (keys[-1] - first).days // days + 1
        labels = tuple((first + dt.timedelta(days=days * p)).isoformat() for p in range(count))
        position = {k: (k - first).days // days for k in keys}
        present = {k.isoformat() for k in keys}
        gaps = [label for label in labels if label not in present]
        unit = "week" if days == 7 else "day"
    else:
        days = period_days
        first = keys[0]
        count = keys[-1] - first + 1
        labels = tuple(str(first + p) for p in range(count))
        position = {k: k - first for k in keys}
        gaps = sorted(set(labels) - {str(k) for k in keys}, key=int)
        unit = "period"
    if gaps:
        shown = ", ".join(gaps[:5]) + (" …" if len(gaps) > 5 else "")
        return None, [
            f"{source}:{time_column}: gap in the calendar: no rows for {len(gaps)} {unit}(s) "
            f"between {labels[0]} and {labels[-1]}: {shown}; write {unit}s without sales as zero rows"
        ]
    quantity = np.zeros((count, len(channels), len(skus)))
    stockout = np.zeros((count, len(channels), len(skus)), dtype=bool)
    for key, c, s, units, censored in good:
        quantity[position[key], c, s] = units
        stockout[position[key], c, s] = censored
    history = SalesHistory(
        labels=labels,
        channels=tuple(channels),
        skus=tuple(skus),
        quantity=quantity,
        stockout=stockout,
        period_days=days,
        source=source,
    )
    return history, []
