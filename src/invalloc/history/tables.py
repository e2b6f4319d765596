"""Read a planner's master-data tables (CSV, as an ERP exports them) into scenario sections.

Every table is a CSV with a header row; every problem of every table is reported at once as
``file:row:column: message``, where *row* is the line number a spreadsheet shows (the header is
row 1) and *column* is the header's name. A column not listed below is an error (a typo such as
``unit_cst`` must not silently fall back to a default); an empty cell takes the default.

Tables and columns (``*`` = required column whose cells must be filled):

``channels.csv`` — one row per customer tier of a channel (a channel without tiers is one row
with ``tier`` empty):
    ``channel*``, ``tier`` (default: the channel id), ``priority`` (0 is served first; default 0),
    ``demand_share`` (share of the channel's demand; the shares of a channel's tiers sum to 1;
    may be empty for a channel's only tier), ``min_fill_rate`` (contractual, 0–1),
    ``penalty_per_unit_short``, ``price_multiplier`` (default 1), ``payment_terms_days``
    (per channel: give it on one row or the same value on each).

``products.csv`` — one row per SKU:
    ``sku*``, ``description`` (free text, not used), ``unit_cost*``, ``price`` (the price in every
    channel) and/or ``price_<channel>`` (the price in one channel; overrides ``price``; every
    channel needs one of them), ``holding_cost`` (per unit per period), ``shelf_life`` (periods),
    ``net_realisable_value``, ``integer_units`` (1/0; default 1).

``locations.csv`` — one row per warehouse / DC:
    ``location*``, ``description``, ``capacity`` (units of all SKUs; empty = unlimited).

``suppliers.csv`` — one row per supplier × SKU offer:
    ``supplier*``, ``sku*``, ``unit_cost*``, ``minimum_order_quantity``, ``capacity_per_period``
    (per SKU, empty = unlimited), and per supplier (on one row or the same on each):
    ``fixed_order_cost`` (per purchase order), ``reliability`` (0–1, default 1),
    ``payment_terms_days``.

``lanes.csv`` — one row per transport link (supplier→DC, DC→DC, DC→channel):
    ``from*``, ``to*``, ``lead_time`` (periods, default 0), ``lead_time_max`` (periods: the lead
    time is then drawn uniformly from ``lead_time`` … ``lead_time_max`` per order),
    ``cost_per_unit``, ``capacity_per_period``, ``shortfall_penalty_per_unit``.

``stock.csv`` (optional) — opening stock, one row per location × SKU held:
    ``location*``, ``sku*``, ``quantity*``.

Without ``suppliers.csv``, each ``from`` id of a lane that is neither a location nor a channel
is a supplier offering every SKU at its ``unit_cost``, without minimum order or capacity.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invalloc.config.schema import MAX_DAYS, MAX_LEAD_TIME, MAX_MONEY, MAX_UNIT_MONEY, MAX_UNITS

#: Largest master-data table read.
MAX_TABLE_BYTES = 50 * 1024 * 1024
#: Problems listed per table before the rest are summarised in one line.
MAX_ROW_PROBLEMS = 20

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.\-]+$")
_TRUE = frozenset({"1", "true", "yes", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "n", "f"})

# ---------------------------------------------------------------------------------------------
# Cell parsers: text → (value, problem). An empty cell never reaches them.
# ---------------------------------------------------------------------------------------------

Parser = Callable[[str], tuple[Any, str | None]]


def _identifier(text: str) -> tuple[Any, str | None]:
    if _IDENTIFIER.match(text):
        return text, None
    return None, f"{text!r} is not an id (letters, digits and _ . - only, no spaces)"


def _text(text: str) -> tuple[Any, str | None]:
    return text, None


def _number(low: float, high: float, what: str = "", *, above: bool = False) -> Parser:
    def parse(text: str) -> tuple[Any, str | None]:
        try:
            value = float(text)
        except ValueError:
            return None, f"{text!r} is not a number"
        if not math.isfinite(value):
            return None, f"{text!r} is not a finite number"
        if value < 0 <= low:
            return None, f"{text} is negative"
        if above and value <= low:
            return None, f"{text} must be above {low:g}{what}"
        if not low <= value <= high:
            return None, f"{text} is outside {low:g} … {high:g}{what}"
        return value, None

    return parse


def _whole(low: int, high: int, what: str = "") -> Parser:
    def parse(text: str) -> tuple[Any, str | None]:
        try:
            value = float(text)
        except ValueError:
            return None, f"{text!r} is not a whole number"
        if not (math.isfinite(value) and value.is_integer()):
            return None, f"{text!r} is not a whole number"
        if value < 0 <= low:
            return None, f"{text} is negative"
        if not low <= value <= high:
            return None, f"{text} is outside {low} … {high}{what}"
        return int(value), None

    return parse


def _flag(text: str) -> tuple[Any, str | None]:
    lowered = text.lower()
    if lowered in _TRUE:
        return True, None
    if lowered in _FALSE:
        return False, None
    return None, f"{text!r} is not a flag (use 1 or 0)"


_UNIT_MONEY = _number(0, MAX_UNIT_MONEY)
_MONEY = _number(0, MAX_MONEY)
_UNITS = _number(0, MAX_UNITS)
_SHARE = _number(0, 1)
_DAYS = _whole(0, MAX_DAYS, " days")
_LEAD = _whole(0, MAX_LEAD_TIME, " periods")


@dataclass(frozen=True)
class _Column:
    parse: Parser
    required: bool = False  # the column must be present and every cell filled


@dataclass
class _Row:
    line: int
    values: dict[str, Any]  # column → parsed value; None for an empty cell


@dataclass
class _Table:
    """One table's good rows and its problems."""

    source: str
    columns: list[str] = field(default_factory=list)
    rows: list[_Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: header problems: the rows were not read
    unreadable: bool = False

    def problem(self, line: int | None, column: str | None, message: str) -> None:
        where = self.source + (f":{line}" if line is not None else "") + (f":{column}" if column else "")
        self.problems.append(f"{where}: {message}")


def _read_table(
    path: Path,
    spec: dict[str, _Column],
    prefixed: dict[str, tuple[Parser, set[str] | None]] | None = None,
) -> _Table:
    """Read one CSV against ``spec``; ``prefixed`` maps a column prefix (``price_``) to the parser
    of such columns and the ids allowed after the prefix (None: any, when they are unknown)."""
    prefixed = prefixed or {}
    table = _Table(str(path))
    try:
        if path.is_dir():
            table.problem(None, None, "is a folder, not a CSV file")
        elif not path.is_file():
            table.problem(None, None, "file not found")
        elif path.stat().st_size > MAX_TABLE_BYTES:
            table.problem(None, None, f"is larger than the {MAX_TABLE_BYTES / 2**20:.0f} MB limit")
        if table.problems:
            table.unreadable = True
            return table
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                table.problem(None, None, f"is empty; needs a header row ({','.join(spec)})")
                table.unreadable = True
                return table
            header = [name.strip() for name in header]
            parsers: dict[str, Parser] = {}
            for position, name in enumerate(header, start=1):
                if not name:
                    table.problem(1, f"column {position}", "has no name")
                elif name in parsers:
                    table.problem(1, name, "column given twice")
                elif name in spec:
                    parsers[name] = spec[name].parse
                else:
                    prefix = next((p for p in prefixed if name.startswith(p)), None)
                    if prefix is None:
                        known = ", ".join([*spec, *(f"{p}<id>" for p in prefixed)])
                        table.problem(1, name, f"unknown column (the columns are {known})")
                    elif prefixed[prefix][1] is not None and name[len(prefix) :] not in prefixed[prefix][1]:
                        table.problem(1, name, f"no channel {name[len(prefix) :]!r} in the channels table")
                    else:
                        parsers[name] = prefixed[prefix][0]
            for name, column in spec.items():
                if column.required and name not in header:
                    table.problem(1, None, f"missing required column {name}")
            if table.problems:
                table.unreadable = True
                return table
            table.columns = header
            row_problems: list[str] = []
            for fields in reader:
                line = reader.line_num
                if not fields or all(not f.strip() for f in fields):
                    continue
                if len(fields) != len(header):
                    row_problems.append(
                        f"{table.source}:{line}: has {len(fields)} fields, the header has {len(header)}"
                    )
                    continue
                values: dict[str, Any] = {}
                bad = False
                for name, text in zip(header, fields, strict=True):
                    text = text.strip()
                    if not text:
                        if name in spec and spec[name].required:
                            row_problems.append(f"{table.source}:{line}:{name}: is empty")
                            bad = True
                        values[name] = None
                        continue
                    value, problem = parsers[name](text)
                    if problem:
                        row_problems.append(f"{table.source}:{line}:{name}: {problem}")
                        bad = True
                    values[name] = value
                table.rows.append(_Row(line, values if not bad else {**values, "_bad": True}))
            if not table.rows and not row_problems:
                row_problems.append(f"{table.source}: has no rows")
            table.problems += row_problems
    except csv.Error as error:
        table.problem(None, None, f"cannot be read as CSV ({error})")
        table.unreadable = True
    except OSError as error:
        table.problem(None, None, f"cannot be read ({error.strerror or error})")
        table.unreadable = True
    except UnicodeDecodeError as error:
        table.problem(None, None, f"not UTF-8 text ({error.reason}); save it as CSV UTF-8")
        table.unreadable = True
    return table


def _good(table: _Table) -> list[_Row]:
    return [row for row in table.rows if "_bad" not in row.values]


def _unique(table: _Table, column: str, what: str) -> dict[str, _Row]:
    """The rows by their id in ``column``; a repeated id is a problem."""
    seen: dict[str, _Row] = {}
    for row in table.rows:
        key = row.values.get(column)
        if key is None:
            continue
        if key in seen:
            table.problem(row.line, column, f"duplicate {what} {key!r} (first on row {seen[key].line})")
        else:
            seen[key] = row
    return seen


def _agree(table: _Table, rows: list[_Row], column: str, owner: str) -> Any:
    """The one value of a per-owner column repeated on an owner's rows (None if never given)."""
    given = [(row, row.values.get(column)) for row in rows if row.values.get(column) is not None]
    for row, value in given[1:]:
        if value != given[0][1]:
            table.problem(
                row.line, column, f"{value:g} differs from {given[0][1]:g} on row {given[0][0].line} for {owner}"
            )
    return given[0][1] if given else None


# ---------------------------------------------------------------------------------------------
# The tables
# ---------------------------------------------------------------------------------------------

CHANNEL_COLUMNS = {
    "channel": _Column(_identifier, required=True),
    "tier": _Column(_identifier),
    "priority": _Column(_whole(0, 1_000_000)),
    "demand_share": _Column(_SHARE),
    "min_fill_rate": _Column(_SHARE),
    "penalty_per_unit_short": _Column(_UNIT_MONEY),
    "price_multiplier": _Column(_number(0, 1_000, above=True)),
    "payment_terms_days": _Column(_DAYS),
}
PRODUCT_COLUMNS = {
    "sku": _Column(_identifier, required=True),
    "description": _Column(_text),
    "unit_cost": _Column(_UNIT_MONEY, required=True),
    "price": _Column(_UNIT_MONEY),
    "holding_cost": _Column(_UNIT_MONEY),
    "shelf_life": _Column(_whole(1, MAX_LEAD_TIME, " periods")),
    "net_realisable_value": _Column(_UNIT_MONEY),
    "integer_units": _Column(_flag),
}
LOCATION_COLUMNS = {
    "location": _Column(_identifier, required=True),
    "description": _Column(_text),
    "capacity": _Column(_number(0, MAX_UNITS, above=True)),
}
SUPPLIER_COLUMNS = {
    "supplier": _Column(_identifier, required=True),
    "sku": _Column(_identifier, required=True),
    "unit_cost": _Column(_UNIT_MONEY, required=True),
    "minimum_order_quantity": _Column(_UNITS),
    "capacity_per_period": _Column(_UNITS),
    "fixed_order_cost": _Column(_MONEY),
    "reliability": _Column(_SHARE),
    "payment_terms_days": _Column(_DAYS),
}
LANE_COLUMNS = {
    "from": _Column(_identifier, required=True),
    "to": _Column(_identifier, required=True),
    "lead_time": _Column(_LEAD),
    "lead_time_max": _Column(_LEAD),
    "cost_per_unit": _Column(_UNIT_MONEY),
    "capacity_per_period": _Column(_UNITS),
    "shortfall_penalty_per_unit": _Column(_UNIT_MONEY),
}
STOCK_COLUMNS = {
    "location": _Column(_identifier, required=True),
    "sku": _Column(_identifier, required=True),
    "quantity": _Column(_UNITS, required=True),
}


@dataclass(frozen=True)
class TablePaths:
    """The master-data files; ``suppliers`` and ``stock`` are optional."""

    products: Path
    locations: Path
    lanes: Path
    channels: Path
    suppliers: Path | None = None
    stock: Path | None = None


@dataclass(frozen=True)
class MasterData:
    """The scenario sections read from the tables (plain data, as in a scenario YAML)."""

    products: list[dict[str, Any]]
    suppliers: list[dict[str, Any]]
    locations: list[dict[str, Any]]
    channels: list[dict[str, Any]]
    lanes: list[dict[str, Any]]
    #: scenario path (``products[3]``) → the table row it came from (``products.csv:5``)
    origins: dict[str, str] = field(default_factory=dict)

    @property
    def sku_ids(self) -> list[str]:
        return [p["id"] for p in self.products]

    @property
    def channel_ids(self) -> list[str]:
        return [c["id"] for c in self.channels]


def _channels(table: _Table) -> list[dict[str, Any]]:
    by_channel: dict[str, list[_Row]] = defaultdict(list)
    for row in table.rows:
        if row.values.get("channel") is not None:
            by_channel[row.values["channel"]].append(row)
    channels = []
    for channel, rows in by_channel.items():
        tiers = []
        first_tier: dict[str, int] = {}
        for row in rows:
            tier_id = row.values.get("tier") or channel
            if tier_id in first_tier:
                table.problem(
                    row.line,
                    "tier",
                    f"duplicate tier {tier_id!r} of channel {channel!r} (first on row {first_tier[tier_id]})",
                )
                continue
            first_tier[tier_id] = row.line
            share = row.values.get("demand_share")
            if share is None:
                if len(rows) > 1:
                    table.problem(row.line, "demand_share", f"is empty but channel {channel!r} has {len(rows)} tiers")
                share = 1.0
            tier = {"id": tier_id, "priority": row.values.get("priority") or 0, "demand_share": share}
            for name in ("min_fill_rate", "penalty_per_unit_short", "price_multiplier"):
                if row.values.get(name) is not None:
                    tier[name] = row.values[name]
            tiers.append(tier)
        if not any("_bad" in row.values for row in rows):
            total = sum(t["demand_share"] for t in tiers)
            if (
                len(tiers) == len(rows)
                and abs(total - 1) > 1e-9
                and all(r.values.get("demand_share") is not None for r in rows)
            ):
                table.problem(
                    rows[0].line,
                    "demand_share",
                    f"the tiers of channel {channel!r} sum to {total:g}, not 1; adjust the shares",
                )
        entry: dict[str, Any] = {"id": channel, "tiers": tiers}
        terms = _agree(table, rows, "payment_terms_days", f"channel {channel!r}")
        if terms is not None:
            entry["payment_terms_days"] = terms
        channels.append(entry)
    return channels


def _products(table: _Table, channel_ids: list[str]) -> list[dict[str, Any]]:
    products = []
    for sku, row in _unique(table, "sku", "SKU").items():
        values = row.values
        entry: dict[str, Any] = {"id": sku, "unit_cost": values.get("unit_cost")}
        default = values.get("price")
        prices = {c: values.get(f"price_{c}") if values.get(f"price_{c}") is not None else default for c in channel_ids}
        missing = [c for c, p in prices.items() if p is None]
        if missing and "_bad" not in values:
            table.problem(
                row.line,
                "price",
                f"no price for SKU {sku!r} in channel(s) {', '.join(missing)}; "
                f"fill price (all channels) or {', '.join(f'price_{c}' for c in missing)}",
            )
        elif not missing:
            entry["price"] = default if len(set(prices.values())) == 1 and default is not None else prices
        for name in ("holding_cost", "shelf_life", "net_realisable_value", "integer_units"):
            if values.get(name) is not None:
                entry[name] = values[name]
        products.append(entry)
    return products


def _locations(table: _Table) -> list[dict[str, Any]]:
    locations = []
    for location, row in _unique(table, "location", "location").items():
        entry: dict[str, Any] = {"id": location}
        if row.values.get("capacity") is not None:
            entry["capacity"] = row.values["capacity"]
        locations.append(entry)
    return locations


def _suppliers(table: _Table, skus: set[str]) -> list[dict[str, Any]]:
    by_supplier: dict[str, list[_Row]] = defaultdict(list)
    for row in table.rows:
        if row.values.get("supplier") is not None:
            by_supplier[row.values["supplier"]].append(row)
    suppliers = []
    for supplier, rows in by_supplier.items():
        items: dict[str, dict[str, Any]] = {}
        first: dict[str, int] = {}
        for row in rows:
            sku = row.values.get("sku")
            if sku is None:
                continue
            if sku not in skus:
                table.problem(row.line, "sku", f"unknown SKU {sku!r} (not in the products table)")
                continue
            if sku in first:
                table.problem(
                    row.line, "sku", f"duplicate offer of {sku!r} by {supplier!r} (first on row {first[sku]})"
                )
                continue
            first[sku] = row.line
            item = {"unit_cost": row.values.get("unit_cost")}
            for name in ("minimum_order_quantity", "capacity_per_period"):
                if row.values.get(name) is not None:
                    item[name] = row.values[name]
            items[sku] = item
        entry: dict[str, Any] = {"id": supplier, "items": items}
        for name in ("fixed_order_cost", "reliability", "payment_terms_days"):
            value = _agree(table, rows, name, f"supplier {supplier!r}")
            if value is not None:
                entry[name] = value
        suppliers.append(entry)
    return suppliers


def _lanes(
    table: _Table, suppliers: set[str], locations: set[str], channels: set[str], implicit: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    """The lanes, and (without a suppliers table) the ids of the suppliers the lanes imply."""
    lanes = []
    implied: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for row in table.rows:
        source, destination = row.values.get("from"), row.values.get("to")
        if source is None or destination is None:
            continue
        if source in channels:
            table.problem(row.line, "from", f"{source!r} is a channel; lanes start at a supplier or location")
        elif source not in suppliers and source not in locations:
            if implicit:
                if source not in implied:
                    implied.append(source)
            else:
                table.problem(row.line, "from", f"unknown node {source!r} (not a supplier or location)")
        if destination in suppliers or destination in implied:
            table.problem(row.line, "to", f"{destination!r} is a supplier; lanes end at a location or channel")
        elif destination not in locations and destination not in channels:
            table.problem(row.line, "to", f"unknown node {destination!r} (not a location or channel)")
        elif (source in suppliers or source in implied) and destination in channels:
            table.problem(row.line, "to", f"suppliers ship to locations, not straight to channel {destination!r}")
        if (source, destination) in seen:
            table.problem(
                row.line, "to", f"duplicate lane {source} → {destination} (first on row {seen[source, destination]})"
            )
        seen.setdefault((source, destination), row.line)
        low, high = row.values.get("lead_time") or 0, row.values.get("lead_time_max")
        if high is not None and high < low:
            table.problem(row.line, "lead_time_max", f"{high} is below lead_time {low}")
        lane: dict[str, Any] = {"from": source, "to": destination}
        lane["lead_time"] = low if high is None or high == low else {"kind": "uniform", "low": low, "high": high}
        for name in ("cost_per_unit", "capacity_per_period", "shortfall_penalty_per_unit"):
            if row.values.get(name) is not None:
                lane[name] = row.values[name]
        lanes.append(lane)
    return lanes, implied


def _stock(table: _Table, locations: list[dict[str, Any]], skus: set[str]) -> None:
    by_id = {loc["id"]: loc for loc in locations}
    first: dict[tuple[str, str], int] = {}
    for row in table.rows:
        location, sku, quantity = (row.values.get(k) for k in ("location", "sku", "quantity"))
        if location is not None and location not in by_id:
            table.problem(row.line, "location", f"unknown location {location!r} (not in the locations table)")
        if sku is not None and sku not in skus:
            table.problem(row.line, "sku", f"unknown SKU {sku!r} (not in the products table)")
        if location in by_id and sku in skus and quantity is not None:
            if (location, sku) in first:
                table.problem(
                    row.line, "sku", f"duplicate stock of {sku!r} at {location!r} (first on row {first[location, sku]})"
                )
                continue
            first[location, sku] = row.line
            if quantity:
                by_id[location].setdefault("opening_stock", {})[sku] = quantity


def read_tables(paths: TablePaths) -> tuple[MasterData | None, list[str]]:
    """Read every master-data table; the scenario sections, or None and every problem.

    Each problem is one line ``file:row:column: message`` (``file:1:column`` for a header
    problem, ``file: message`` for one of the whole file). Tables that refer to other tables
    (prices per channel, supplier offers, lanes, stock) are checked against them when those
    could be read.
    """
    channels_table = _read_table(paths.channels, CHANNEL_COLUMNS)
    channels = _channels(channels_table) if not channels_table.unreadable else []
    channel_ids = [c["id"] for c in channels]
    known_channels = None if channels_table.unreadable else set(channel_ids)
    products_table = _read_table(paths.products, PRODUCT_COLUMNS, {"price_": (_UNIT_MONEY, known_channels)})
    # Without the channels the prices cannot be checked, and so the SKUs are not known either.
    products_unknown = products_table.unreadable or channels_table.unreadable
    products = [] if products_unknown else _products(products_table, channel_ids)
    skus = {p["id"] for p in products}
    locations_table = _read_table(paths.locations, LOCATION_COLUMNS)
    locations = _locations(locations_table)
    location_ids = {loc["id"] for loc in locations}
    tables = [channels_table, products_table, locations_table]
    # Ids name nodes of one network: a location may not share its id with a channel or supplier.
    for row in locations_table.rows:
        node = row.values.get("location")
        if node in channel_ids:
            locations_table.problem(row.line, "location", f"{node!r} is also a channel id; nodes need distinct ids")
    suppliers: list[dict[str, Any]] = []
    suppliers_unreadable = False
    if paths.suppliers is not None:
        suppliers_table = _read_table(paths.suppliers, SUPPLIER_COLUMNS)
        tables.append(suppliers_table)
        suppliers_unreadable = suppliers_table.unreadable or products_unknown
        if not suppliers_table.unreadable and not products_unknown:
            suppliers = _suppliers(suppliers_table, skus)
        for row in suppliers_table.rows:
            node = row.values.get("supplier")
            if node in location_ids or node in channel_ids:
                suppliers_table.problem(
                    row.line, "supplier", f"{node!r} is also a location or channel id; nodes need distinct ids"
                )
    supplier_ids = {s["id"] for s in suppliers}
    lanes_table = _read_table(paths.lanes, LANE_COLUMNS)
    tables.append(lanes_table)
    lanes: list[dict[str, Any]] = []
    # Lanes and stock are checked against the other tables only when those could be read (a
    # table that could not be read would make every reference to it look unknown).
    nodes_known = not (channels_table.unreadable or locations_table.unreadable or suppliers_unreadable)
    if not lanes_table.unreadable and nodes_known:
        lanes, implied = _lanes(lanes_table, supplier_ids, location_ids, set(channel_ids), paths.suppliers is None)
        suppliers += [
            {"id": supplier, "items": {p["id"]: {"unit_cost": p["unit_cost"]} for p in products}}
            for supplier in implied
        ]
    if paths.stock is not None:
        stock_table = _read_table(paths.stock, STOCK_COLUMNS)
        tables.append(stock_table)
        if not (stock_table.unreadable or locations_table.unreadable or products_unknown):
            _stock(stock_table, locations, skus)
    problems = []
    for table in tables:
        problems += table.problems[:MAX_ROW_PROBLEMS]
        if len(table.problems) > MAX_ROW_PROBLEMS:
            problems.append(f"{table.source}: ... and {len(table.problems) - MAX_ROW_PROBLEMS} more problems")
    if problems:
        return None, problems
    origins = {}
    for section, table, key in (
        ("products", products_table, "sku"),
        ("locations", locations_table, "location"),
        ("channels", channels_table, "channel"),
    ):
        first: dict[str, int] = {}
        for row in table.rows:
            first.setdefault(row.values[key], row.line)
        for index, entry in enumerate({"products": products, "locations": locations, "channels": channels}[section]):
            origins[f"{section}[{index}]"] = f"{table.source}:{first[entry['id']]}"
    if paths.suppliers is not None:
        first = {}
        for row in suppliers_table.rows:
            first.setdefault(row.values["supplier"], row.line)
        for index, entry in enumerate(suppliers):
            if entry["id"] in first:
                origins[f"suppliers[{index}]"] = f"{suppliers_table.source}:{first[entry['id']]}"
    for index, row in enumerate(lanes_table.rows):
        origins[f"lanes[{index}]"] = f"{lanes_table.source}:{row.line}"
    return MasterData(products, suppliers, locations, channels, lanes, origins), []
