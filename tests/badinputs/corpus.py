"""The bad-input corpus: every case is data — a command (or a Python API call), the files it
reads, and the fragments its one-line error must contain (the file and the field at fault).

A case is *clean* when the command exits with code 2, prints only ``error: …`` lines on
standard error (no traceback), the lines name the file and field, and the working directory
holds exactly the files it held before (no output file, no MLflow store, no run left behind).
API cases must raise ``ValueError`` / ``TypeError`` / ``RuntimeError`` (never RecursionError,
MemoryError or an assertion) with a one-line message naming the argument.

``{w}`` in an argument is replaced by the case's working directory.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from invalloc.config.loader import load_scenario


@dataclass(frozen=True)
class Case:
    id: str
    argv: list[str] = field(default_factory=list)  # CLI arguments after `invalloc`
    files: dict[str, Any] = field(default_factory=dict)  # name → str | bytes | dict (YAML) | callable(Path)
    expect: tuple[str, ...] = ()  # fragments every one of which the error text contains
    api: Callable[[Path], Any] | None = None  # a Python API call that must fail cleanly instead of argv
    subprocess: bool = False  # run through the real console entry point


CASES: list[Case] = []


def case(id: str, argv: list[str] | str = (), files: dict | None = None, expect: tuple | str = (), **kw) -> None:
    if isinstance(argv, str):
        argv = argv.split()
    if isinstance(expect, str):
        expect = (expect,)
    CASES.append(Case(id, list(argv), files or {}, tuple(expect), **kw))


# ---------------------------------------------------------------------------------------------
# Shipped data the mutations start from
# ---------------------------------------------------------------------------------------------


def shipped(name: str) -> dict[str, Any]:
    """The raw YAML data of a shipped scenario (found the way every command finds it)."""
    return yaml.safe_load(Path(load_scenario(name).source).read_text(encoding="utf-8"))


TINY = shipped("tiny")
TINY_DECISIONS = [
    "order/maker/dc/widget",
    "order/maker/dc/gadget",
    "allocate/dc/stores/widget",
    "allocate/dc/stores/gadget",
    "allocate/dc/online/widget",
    "allocate/dc/online/gadget",
]
EXPERIMENT = {
    "name": "bad",
    "scenario": "tiny",
    "algorithm": "PPO",
    "hyperparameters": {"n_steps": 64, "batch_size": 32, "n_epochs": 1, "learning_rate": 0.0003, "gamma": 0.99},
    "policy": {"net_arch": [16]},
    "env": {"n_envs": 1},
    "timesteps": 128,
    "seed": 0,
    "evaluation": {"every_timesteps": 128, "episodes": 1},
    "checkpoint_every_timesteps": 128,
}


def _parse(path: str) -> list[Any]:
    """``a.b[0].c`` → ["a", "b", 0, "c"]."""
    parts: list[Any] = []
    for chunk in path.replace("]", "").split("."):
        name, *indices = chunk.split("[")
        if name:
            parts.append(name)
        parts += [int(i) for i in indices]
    return parts


_DELETE = object()


def mutated(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with each ``path: value`` set (``_DELETE`` removes the key)."""
    data = copy.deepcopy(base)
    for path, value in changes.items():
        parts = _parse(path)
        node = data
        for part in parts[:-1]:
            if isinstance(node, dict) and part not in node:
                node[part] = {}
            node = node[part]
        if value is _DELETE:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value
    return data


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def alias_bomb(depth: int, width: int = 9) -> str:
    """The "billion laughs" YAML: each level a list of ``width`` aliases of the one before."""
    lines = ['a0: &a0 ["lol"]']
    for level in range(1, depth + 1):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def deep_list_yaml(depth: int) -> str:
    return "name: tiny\nproducts: " + "[" * depth + "]" * depth + "\n"


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


# ---------------------------------------------------------------------------------------------
# 1. Scenario YAML: `invalloc scenario validate FILE` (a few through simulate / tune / compare)
# ---------------------------------------------------------------------------------------------

SCENARIO_MUTATIONS: dict[str, tuple[dict[str, Any], str]] = {
    # overflowing money and quantities: refused at validation
    "price_1e308": ({"products[0].price": 1e308}, "products[0].price"),
    "channel_price_1e308": ({"products[1].price.online": 1e308}, "products[1].price"),
    "unit_cost_1e300": ({"products[0].unit_cost": 1e300}, "products[0].unit_cost"),
    "holding_cost_1e308": ({"products[0].holding_cost": 1e308}, "products[0].holding_cost"),
    "nrv_1e308": ({"products[1].net_realisable_value": 1e308}, "products[1].net_realisable_value"),
    "shelf_life_1e9": ({"products[0].shelf_life": 10**9}, "products[0].shelf_life"),
    "supplier_cost_1e308": ({"suppliers[0].items.widget.unit_cost": 1e308}, "suppliers[0].items.widget.unit_cost"),
    "moq_1e308": (
        {"suppliers[0].items.gadget.minimum_order_quantity": 1e308},
        "suppliers[0].items.gadget.minimum_order_quantity",
    ),
    "supplier_capacity_1e308": (
        {"suppliers[0].items.widget.capacity_per_period": 1e308},
        "suppliers[0].items.widget.capacity_per_period",
    ),
    "supplier_capacity_0": (
        {"suppliers[0].items.widget.capacity_per_period": 0},
        "suppliers[0].items.widget.capacity_per_period",
    ),
    "fixed_order_cost_1e308": ({"suppliers[0].fixed_order_cost": 1e308}, "suppliers[0].fixed_order_cost"),
    "payment_terms_1e9": ({"suppliers[0].payment_terms_days": 10**9}, "suppliers[0].payment_terms_days"),
    "location_capacity_1e308": ({"locations[0].capacity": 1e308}, "locations[0].capacity"),
    "opening_stock_1e308": ({"locations[0].opening_stock.widget": 1e308}, "locations[0].opening_stock"),
    "opening_stock_scalar_1e20": ({"locations[0].opening_stock": 1e20}, "locations[0].opening_stock"),
    "dc_holding_cost_1e308": ({"locations[0].holding_cost": {"widget": 1e308}}, "locations[0].holding_cost"),
    "lane_lead_time_1e9": ({"lanes[0].lead_time": 10**9}, "lanes[0].lead_time"),
    "lane_lead_time_1e25": ({"lanes[0].lead_time": 10**25}, "lanes[0].lead_time"),
    "uniform_high_1e9": ({"lanes[0].lead_time.high": 10**9}, "lanes[0].lead_time.high"),
    "discrete_lead_time_1e9": (
        {"lanes[0].lead_time": {"kind": "discrete", "values": [1, 10**9], "probabilities": [0.5, 0.5]}},
        "lanes[0].lead_time.values[1]",
    ),
    "fixed_lead_time_1e9": ({"lanes[0].lead_time": {"kind": "fixed", "periods": 10**9}}, "lanes[0].lead_time"),
    "lane_cost_1e308": ({"lanes[0].cost_per_unit": 1e308}, "lanes[0].cost_per_unit"),
    "lane_capacity_1e308": ({"lanes[1].capacity_per_period": 1e308}, "lanes[1].capacity_per_period"),
    "lane_penalty_1e308": ({"lanes[0].shortfall_penalty_per_unit": 1e308}, "lanes[0].shortfall_penalty_per_unit"),
    "tier_penalty_1e308": (
        {"channels[0].tiers[0].penalty_per_unit_short": 1e308},
        "channels[0].tiers[0].penalty_per_unit_short",
    ),
    "tier_price_multiplier_1e308": (
        {"channels[0].tiers[0].price_multiplier": 1e308},
        "channels[0].tiers[0].price_multiplier",
    ),
    "tier_priority_1e25": ({"channels[0].tiers[0].priority": 10**25}, "channels[0].tiers[0].priority"),
    "channel_terms_1e9": ({"channels[0].payment_terms_days": 10**9}, "channels[0].payment_terms_days"),
    "demand_mean_1e300": ({"demand.streams[0].mean": 1e300}, "demand.streams[0].mean"),
    "demand_mean_sku_1e300": ({"demand.streams[1].mean.widget": 1e300}, "demand.streams[1].mean"),
    "demand_std_1e300": (
        {"demand.streams[0].distribution": "normal", "demand.streams[0].std": 1e300},
        "demand.streams[0].std",
    ),
    "demand_trend_1e300": ({"demand.streams[0].trend": 1e300}, "demand.streams[0].trend"),
    "demand_trend_-1e300": ({"demand.streams[0].trend": -1e300}, "demand.streams[0].trend"),
    "seasonality_period_1e25": (
        {"demand.streams[0].seasonality": {"amplitude": 0.1, "period": 10**25}},
        "demand.streams[0].seasonality.period",
    ),
    "seasonality_phase_1e308": (
        {"demand.streams[0].seasonality": {"amplitude": 0.1, "period": 4, "phase": 1e308}},
        "demand.streams[0].seasonality.phase",
    ),
    "opening_cash_1e308": ({"finance.opening_cash": 1e308}, "finance.opening_cash"),
    "opening_cash_-1e308": ({"finance.opening_cash": -1e308}, "finance.opening_cash"),
    "credit_line_1e308": ({"finance.credit_line": 1e308}, "finance.credit_line"),
    "treasury_buffer_1e308": ({"finance.treasury_buffer": 1e308}, "finance.treasury_buffer"),
    "treasury_buffer_-1e308": ({"finance.treasury_buffer": -1e308}, "finance.treasury_buffer"),
    "cost_of_capital_1e300": ({"finance.cost_of_capital": 1e300}, "finance.cost_of_capital"),
    "customer_terms_1e9": ({"finance.customer_payment_terms_days": 10**9}, "finance.customer_payment_terms_days"),
    "supplier_terms_1e25": ({"finance.supplier_payment_terms_days": 10**25}, "finance.supplier_payment_terms_days"),
    "reserve_quantity_1e308": ({"rules.reserve_stock[0].quantity": 1e308}, "rules.reserve_stock[0].quantity"),
    "approval_limit_1e308": (
        {"rules.purchase_approval": {"value_limit": 1e308}},
        "rules.purchase_approval.value_limit",
    ),
    "approval_delay_1e9": (
        {"rules.purchase_approval": {"value_limit": 500, "action": "delay", "delay_periods": 10**9}},
        "rules.purchase_approval.delay_periods",
    ),
    "budget_1e308": ({"rules.purchase_budget_per_period": 1e308}, "rules.purchase_budget_per_period"),
    "horizon_1e9": ({"episode.horizon": 10**9}, "episode.horizon"),
    "horizon_1e25": ({"episode.horizon": 10**25}, "episode.horizon"),
    "horizon_float_1e25": ({"episode.horizon": 1e25}, "episode.horizon"),
    "period_days_1e9": ({"episode.period_days": 10**9}, "episode.period_days"),
    "warmup_1e25": ({"episode.warmup": 10**25}, "episode.warmup"),
    # wrong types and values the schema refuses
    "horizon_text": ({"episode.horizon": "twenty"}, "episode.horizon"),
    "horizon_half": ({"episode.horizon": 20.5}, "episode.horizon"),
    "horizon_zero": ({"episode.horizon": 0}, "episode.horizon"),
    "horizon_bool": ({"episode.horizon": True}, "episode.horizon"),
    "horizon_list": ({"episode.horizon": [20]}, "episode.horizon"),
    "horizon_null": ({"episode.horizon": None}, "episode.horizon"),
    "discount_zero": ({"episode.discount": 0}, "episode.discount"),
    "discount_nan": ({"episode.discount": float("nan")}, "episode.discount"),
    "price_nan": ({"products[0].price": float("nan")}, "products[0].price"),
    "price_inf": ({"products[0].price": float("inf")}, "products[0].price"),
    "price_negative": ({"products[0].price": -1}, "products[0].price"),
    "price_text": ({"products[0].price": "ten"}, "products[0].price"),
    "unit_cost_-inf": ({"products[0].unit_cost": float("-inf")}, "products[0].unit_cost"),
    "opening_cash_nan": ({"finance.opening_cash": float("nan")}, "finance.opening_cash"),
    "opening_cash_text": ({"finance.opening_cash": "lots"}, "finance.opening_cash"),
    "reliability_2": ({"suppliers[0].reliability": 2}, "suppliers[0].reliability"),
    "reliability_nan": ({"suppliers[0].reliability": float("nan")}, "suppliers[0].reliability"),
    "demand_share_nan": ({"channels[0].tiers[0].demand_share": float("nan")}, "channels[0].tiers[0].demand_share"),
    "min_fill_rate_inf": ({"channels[0].tiers[0].min_fill_rate": float("inf")}, "channels[0].tiers[0].min_fill_rate"),
    "lead_time_negative": ({"lanes[0].lead_time": -1}, "lanes[0].lead_time"),
    "lead_time_nan": ({"lanes[0].lead_time": float("nan")}, "lanes[0].lead_time"),
    "lead_time_text": ({"lanes[0].lead_time": "soon"}, "lanes[0].lead_time"),
    "uniform_low_above_high": ({"lanes[0].lead_time": {"kind": "uniform", "low": 3, "high": 1}}, "lanes[0].lead_time"),
    "lane_to_unknown": ({"lanes[0].to": "nowhere"}, "lanes[0]"),
    "lane_capacity_zero": ({"lanes[1].capacity_per_period": 0}, "lanes[1].capacity_per_period"),
    "demand_channel_unknown": ({"demand.streams[0].channel": "mars"}, "demand.streams[0].channel"),
    "demand_sku_unknown": ({"demand.streams[0].skus": ["widget", "nope"]}, "demand.streams[0].skus"),
    "distribution_unknown": ({"demand.streams[0].distribution": "cauchy"}, "demand.streams[0].distribution"),
    "mean_nan": ({"demand.streams[0].mean": float("nan")}, "demand.streams[0].mean"),
    "std_inf": (
        {"demand.streams[0].distribution": "normal", "demand.streams[0].std": float("inf")},
        "demand.streams[0].std",
    ),
    "seasonality_amplitude_nan": (
        {"demand.streams[0].seasonality": {"amplitude": float("nan"), "period": 4}},
        "demand.streams[0].seasonality.amplitude",
    ),
    "cost_method_unknown": ({"finance.cost_method": "lifo"}, "finance.cost_method"),
    "unmet_demand_unknown": ({"episode.unmet_demand": "ignore"}, "episode.unmet_demand"),
    "reward_basis_unknown": ({"episode.reward_basis": "cash"}, "episode.reward_basis"),
    "unknown_top_key": ({"extra_section": 1}, "extra_section"),
    "unknown_product_key": ({"products[0].colour": "red"}, "products[0].colour"),
    "id_with_space": ({"products[0].id": "wid get"}, "products[0].id"),
    "id_empty": ({"products[0].id": ""}, "products[0].id"),
    "products_empty": ({"products": []}, "products"),
    "products_mapping": ({"products": {"widget": 1}}, "products"),
    "name_missing": ({"name": _DELETE}, "name"),
    "episode_missing": ({"episode": _DELETE}, "episode"),
    "reserve_tier_unknown": ({"rules.reserve_stock[0].tiers": ["vip"]}, "rules.reserve_stock[0].tiers"),
    "max_channel_share_nan": ({"rules.max_channel_share": float("nan")}, "rules.max_channel_share"),
    "budget_negative": ({"rules.purchase_budget_per_period": -5}, "rules.purchase_budget_per_period"),
    "warmup_beyond_horizon": ({"episode.warmup": 30}, "episode.warmup"),
    "trace_missing_file": ({"demand.trace": "no_such_trace.csv"}, "demand.trace"),
    "trace_is_list": ({"demand.trace": ["a.csv"]}, "demand.trace"),
}

for _name, (_changes, _field) in SCENARIO_MUTATIONS.items():
    case(
        f"scenario/{_name}",
        ["scenario", "validate", "{w}/bad.yaml"],
        {"bad.yaml": mutated(TINY, _changes)},
        ("bad.yaml", _field),
    )

# The same overflowing scenarios through the commands that would run them.
for _name, _command in [
    ("price_1e308", ["simulate", "--scenario", "{w}/bad.yaml", "--policy", "base_stock"]),
    ("opening_cash_1e308", ["simulate", "--scenario", "{w}/bad.yaml", "--json"]),
    ("demand_mean_1e300", ["simulate", "--scenario", "{w}/bad.yaml", "--policy", "oracle"]),
    ("horizon_1e9", ["simulate", "--scenario", "{w}/bad.yaml"]),
    ("lane_lead_time_1e9", ["simulate", "--scenario", "{w}/bad.yaml"]),
    ("horizon_1e25", ["tune", "--scenario", "{w}/bad.yaml", "--seeds", "0-1"]),
    ("price_1e308", ["compare", "--scenario", "{w}/bad.yaml", "--policy", "base_stock", "--policy", "s_S"]),
    ("price_1e308", ["scenario", "show", "{w}/bad.yaml"]),
]:
    _changes, _field = SCENARIO_MUTATIONS[_name]
    case(f"scenario-via-{_command[0]}/{_name}", _command, {"bad.yaml": mutated(TINY, _changes)}, ("bad.yaml", _field))

# Episodes too large for memory: refused by the size of their arrays, not only by the horizon.
case(
    "scenario/retail_horizon_too_many_values",
    ["scenario", "validate", "{w}/bad.yaml"],
    {"bad.yaml": mutated(shipped("retail"), {"episode.horizon": 400_000})},
    ("bad.yaml", "episode.horizon", "values"),
)
case(
    "scenario-via-simulate/retail_periods_too_many_values",
    ["simulate", "--scenario", "retail", "--periods", "900000"],
    {},
    ("--periods", "values"),
)
case(
    "env/periods_too_many_values",
    api=lambda work: __import__("invalloc.env", fromlist=["AllocationEnv"]).AllocationEnv("retail", periods=900_000),
    expect=("periods", "values"),
)

# Files that are not scenarios at all.
_SCENARIO_FILES: dict[str, tuple[Any, str]] = {
    "alias_bomb_depth6": (alias_bomb(6), "alias"),
    "alias_bomb_depth9": (alias_bomb(9), "alias"),
    "alias_bomb_wide": (alias_bomb(4, width=200), "alias"),
    "self_referencing_alias": ("name: &x [*x]\n", "refers to itself"),
    "self_referencing_mapping": ("a: &x {b: *x}\nname: tiny\n", "refers to itself"),
    "deep_lists_999": (deep_list_yaml(999), "nest"),
    "deep_lists_5000": (deep_list_yaml(5000), "nest"),
    "deep_mappings_2000": ("a: " + "{b: " * 2000 + "1" + "}" * 2000 + "\n", "nest"),
    "deep_block_mappings": ("".join(f"{'  ' * i}k{i}:\n" for i in range(400)) + "  " * 400 + "v\n", "nest"),
    "binary": (bytes(range(256)) * 4, "bad.yaml"),
    "latin1": ("name: caf\xe9\n".encode("latin-1"), "UTF-8"),
    "empty": ("", "empty"),
    "only_comment": ("# nothing here\n", "empty"),
    "top_level_list": ("- a\n- b\n", "mapping"),
    "top_level_scalar": ("42\n", "mapping"),
    "bad_syntax": ("name: [unclosed\n", "not valid YAML"),
    "tab_indent": ("name: tiny\nproducts:\n\t- id: x\n", "not valid YAML"),
    "python_tag": ("name: !!python/object/apply:os.system ['echo pwned']\n", "not valid YAML"),
    "custom_tag": ("name: !secret x\n", "not valid YAML"),
    "duplicate_keys": (dump(TINY) + "name: other\n", "duplicate key"),
    "undefined_alias": ("name: *nothing\n", "not valid YAML"),
    "two_documents": ("name: a\n---\nname: b\n", "not valid YAML"),
    "null_byte": ("name: ti\x00ny\n", "bad.yaml"),
    "huge_file_11mb": ("# " + "x" * (11 * 1024 * 1024) + "\n" + dump(TINY), "MB"),
}
for _name, (_content, _fragment) in _SCENARIO_FILES.items():
    case(
        f"scenario-file/{_name}",
        ["scenario", "validate", "{w}/bad.yaml"],
        {"bad.yaml": _content},
        ("bad.yaml", _fragment),
    )
case(
    "scenario-file/alias_bomb_via_simulate",
    ["simulate", "--scenario", "{w}/bad.yaml"],
    {"bad.yaml": alias_bomb(8)},
    ("bad.yaml", "alias"),
)
case("scenario-file/missing", ["scenario", "validate", "{w}/missing.yaml"], {}, ("missing.yaml", "no such"))
case("scenario-file/unknown_name", ["scenario", "validate", "retial"], {}, ("retial", "no such"))
case("scenario-file/directory", ["scenario", "validate", "{w}/adir.yaml"], {"adir.yaml/x": "a"}, ("adir.yaml",))
case("scenario-file/directory_show", ["scenario", "show", "{w}/adir.yaml"], {"adir.yaml/x": "a"}, ("adir.yaml",))
case(
    "scenario-file/subprocess_alias_bomb",
    ["scenario", "validate", "{w}/bad.yaml"],
    {"bad.yaml": alias_bomb(9)},
    ("bad.yaml", "alias"),
    subprocess=True,
)
case(
    "scenario-file/subprocess_1e308",
    ["simulate", "--scenario", "{w}/bad.yaml"],
    {"bad.yaml": mutated(TINY, {"products[0].price": 1e308})},
    ("bad.yaml", "products[0].price"),
    subprocess=True,
)


def _big_scenario(path: Path) -> None:
    """A 50 MB scenario: refused by size before it is parsed."""
    with path.open("w") as handle:
        handle.write(dump(TINY))
        handle.write("description_padding: |\n")
        line = "  " + "y" * 1000 + "\n"
        for _ in range(50 * 1024):
            handle.write(line)


case(
    "scenario-file/huge_file_50mb",
    ["scenario", "validate", "{w}/big.yaml"],
    {"big.yaml": _big_scenario},
    ("big.yaml", "MB"),
)


# ---------------------------------------------------------------------------------------------
# 2. Demand traces: scenario `demand.trace` and `simulate --demand-trace`
# ---------------------------------------------------------------------------------------------


def _trace(rows: list[tuple[Any, Any, Any, Any]], header: str = "period,channel,sku,quantity") -> str:
    return header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows)


def _full_trace(first: int = 0, periods: int = 20, quantity: Any = 3, **override: Any) -> list[tuple]:
    rows = []
    for t in range(first, first + periods):
        for channel in ("stores", "online"):
            for sku in ("widget", "gadget"):
                rows.append((t, channel, sku, override.get(f"{t}/{channel}/{sku}", quantity)))
    return rows


TRACES: dict[str, tuple[str | bytes, str]] = {
    "inf_quantity": (_trace(_full_trace(**{"3/stores/widget": "inf"})), "quantity"),
    "huge_quantity_1e308": (_trace(_full_trace(**{"3/stores/widget": "1e308"})), "quantity"),
    "huge_quantity_1e20": (_trace(_full_trace(**{"3/stores/widget": "1e20"})), "quantity"),
    "nan_quantity": (_trace(_full_trace(**{"3/stores/widget": "nan"})), "quantity"),
    "negative_quantity": (_trace(_full_trace(**{"3/stores/widget": "-4"})), "quantity"),
    "text_quantity": (_trace(_full_trace(**{"3/stores/widget": "many"})), "quantity"),
    "empty_quantity": (_trace(_full_trace(**{"3/stores/widget": ""})), "quantity"),
    "only_header": (_trace([]), "no rows"),
    "empty_file": ("", "column"),
    "periods_from_1": (_trace(_full_trace(first=1)), "numbered from 0"),
    "period_half": (_trace(_full_trace() + [("1.5", "stores", "widget", 3)]), "period"),
    "period_text": (_trace(_full_trace() + [("later", "stores", "widget", 3)]), "period"),
    "period_negative": (_trace(_full_trace() + [(-1, "stores", "widget", 3)]), "period"),
    "period_1e20": (_trace(_full_trace() + [("1e20", "stores", "widget", 3)]), "period"),
    "period_huge_int": (_trace(_full_trace() + [(10**25, "stores", "widget", 3)]), "period"),
    "duplicated_row": (_trace(_full_trace() + [(4, "stores", "widget", 3)]), "duplicate"),
    "unknown_channel": (_trace(_full_trace() + [(4, "mars", "widget", 3)]), "channel"),
    "unknown_sku": (_trace(_full_trace() + [(4, "stores", "sprocket", 3)]), "sku"),
    "missing_quantity_column": (_trace([(0, "stores", "widget")] * 2, header="period,channel,sku"), "quantity"),
    "short_trace": (_trace(_full_trace(periods=5)), "horizon"),
    "binary": (bytes(range(256)) * 8, "trace"),
    "latin1": ("period,channel,sku,quantity\n0,st\xf6res,widget,1\n".encode("latin-1"), "trace"),
    "ragged_rows": (_trace(_full_trace()) + "4,stores,widget,3,9,9\n", "trace"),
}
for _name, (_content, _fragment) in TRACES.items():
    case(
        f"trace-cli/{_name}",
        ["simulate", "--scenario", "tiny", "--demand-trace", "{w}/trace.csv"],
        {"trace.csv": _content},
        ("trace.csv", _fragment),
    )
for _name in (
    "inf_quantity",
    "huge_quantity_1e308",
    "only_header",
    "periods_from_1",
    "period_half",
    "duplicated_row",
    "nan_quantity",
    "binary",
    "period_huge_int",
    "text_quantity",
):
    _content, _fragment = TRACES[_name]
    case(
        f"trace-scenario/{_name}",
        ["scenario", "validate", "{w}/traced.yaml"],
        {"trace.csv": _content, "traced.yaml": mutated(TINY, {"demand": {"trace": "trace.csv"}})},
        ("traced.yaml", "demand.trace", _fragment),
    )
case(
    "trace-scenario/directory",
    ["scenario", "validate", "{w}/traced.yaml"],
    {"tdir/x": "1", "traced.yaml": mutated(TINY, {"demand": {"trace": "tdir"}})},
    ("traced.yaml", "demand.trace"),
)
case(
    "trace-scenario/absolute_missing",
    ["scenario", "validate", "{w}/traced.yaml"],
    {"traced.yaml": mutated(TINY, {"demand": {"trace": "/nonexistent/trace.csv"}})},
    ("traced.yaml", "demand.trace"),
)
case(
    "trace-cli/missing_file",
    ["simulate", "--scenario", "tiny", "--demand-trace", "{w}/none.csv"],
    {},
    ("none.csv", "not found"),
)
case(
    "trace-cli/directory", ["simulate", "--scenario", "tiny", "--demand-trace", "{w}/tdir"], {"tdir/x": "a"}, ("tdir",)
)
case(
    "trace-cli/subprocess_inf",
    ["simulate", "--scenario", "tiny", "--demand-trace", "{w}/trace.csv"],
    {"trace.csv": TRACES["inf_quantity"][0]},
    ("trace.csv", "quantity"),
    subprocess=True,
)


# ---------------------------------------------------------------------------------------------
# 3. Actions CSV for `--policy replay`
# ---------------------------------------------------------------------------------------------


def _actions(rows: int = 20, value: Any = 5, header: list[str] | None = None, extra: str = "", **cells: Any) -> str:
    header = header or ["period", *TINY_DECISIONS]
    lines = [",".join(header)]
    for t in range(rows):
        values = [str(cells.get(f"{t}/{k}", value)) for k in range(len(header) - 1)]
        lines.append(",".join([str(t), *values]))
    return "\n".join(lines) + "\n" + extra


ACTIONS: dict[str, tuple[str | bytes, str]] = {
    "text_value": (_actions(**{"3/0": "lots"}), "order/maker/dc/widget"),
    "nan_value": (_actions(**{"3/1": "nan"}), "order/maker/dc/gadget"),
    "inf_value": (_actions(**{"3/2": "inf"}), "allocate/dc/stores/widget"),
    "huge_value": (_actions(**{"3/0": "1e308"}), "order/maker/dc/widget"),
    "negative_value": (_actions(**{"3/0": "-5"}), "order/maker/dc/widget"),
    "empty_value": (_actions(**{"3/0": ""}), "order/maker/dc/widget"),
    "duplicated_period": (_actions(extra=",".join(["4"] + ["1"] * 6) + "\n"), "period"),
    "period_half": (_actions(extra=",".join(["1.5"] + ["1"] * 6) + "\n"), "period"),
    "period_text": (_actions(extra=",".join(["soon"] + ["1"] * 6) + "\n"), "period"),
    "period_negative": (_actions(extra=",".join(["-1"] + ["1"] * 6) + "\n"), "period"),
    "missing_periods": (_actions(rows=5), "period"),
    "missing_column": (_actions(header=["period", *TINY_DECISIONS[:-1]]), "allocate/dc/online/gadget"),
    "unknown_column": (_actions(header=["period", *TINY_DECISIONS, "order/x/y/z"]), "order/x/y/z"),
    "no_period_column": ("a,b\n1,2\n", "period"),
    "only_header": (",".join(["period", *TINY_DECISIONS]) + "\n", "period"),
    "empty_file": ("", "actions"),
    "binary": (bytes(range(256)) * 8, "actions"),
}
for _name, (_content, _fragment) in ACTIONS.items():
    case(
        f"actions/{_name}",
        ["simulate", "--scenario", "tiny", "--policy", "replay", "--actions", "{w}/actions.csv"],
        {"actions.csv": _content},
        ("actions.csv", _fragment),
    )
case(
    "actions/missing_file",
    ["simulate", "--scenario", "tiny", "--policy", "replay", "--actions", "{w}/no.csv"],
    {},
    ("no.csv", "not found"),
)
case(
    "actions/directory",
    ["simulate", "--scenario", "tiny", "--policy", "replay", "--actions", "{w}/adir"],
    {"adir/x": "1"},
    ("adir",),
)
case(
    "actions/with_base_stock",
    ["simulate", "--scenario", "tiny", "--policy", "base_stock", "--actions", "{w}/actions.csv"],
    {"actions.csv": _actions()},
    ("--actions", "replay"),
)
case(
    "actions/with_oracle",
    ["simulate", "--scenario", "tiny", "--policy", "oracle", "--actions", "{w}/actions.csv"],
    {"actions.csv": _actions()},
    ("--actions", "replay"),
)
case("actions/replay_without_file", ["simulate", "--scenario", "tiny", "--policy", "replay"], {}, ("--actions",))
case(
    "actions/replay_with_param",
    ["simulate", "--scenario", "tiny", "--policy", "replay", "--actions", "{w}/actions.csv", "--param", "level=3"],
    {"actions.csv": _actions()},
    ("--param level",),
)


# ---------------------------------------------------------------------------------------------
# 4. Policy parameters: --param and the --params YAML of `invalloc tune`
# ---------------------------------------------------------------------------------------------

PARAMS: dict[str, tuple[str, list[str], str]] = {
    "level_nan": ("base_stock", ["level=nan"], "level"),
    "level_negative": ("base_stock", ["level=-10"], "level"),
    "level_inf": ("base_stock", ["level=inf"], "level"),
    "level_1e300": ("base_stock", ["level=1e300"], "level"),
    "level_text": ("base_stock", ["level=high"], "level"),
    "level_two_values": ("base_stock", ["level=1,2"], "level"),
    "level_empty": ("base_stock", ["level="], "level"),
    "levels_nan": ("base_stock", ["levels=nan"], "levels"),
    "levels_negative": ("base_stock", ["levels=-3"], "levels"),
    "levels_too_many": ("base_stock", ["levels=1,2,3,4"], "levels"),
    "cover_inf": ("base_stock", ["cover=inf"], "cover"),
    "cover_nan": ("base_stock", ["cover=nan"], "cover"),
    "cover_negative": ("base_stock", ["cover=-1"], "cover"),
    "cover_1e300": ("base_stock", ["cover=1e300"], "cover"),
    "stop_negative": ("base_stock", ["stop=-3"], "stop"),
    "stop_nan": ("base_stock", ["stop=nan"], "stop"),
    "stop_half": ("base_stock", ["stop=2.5"], "stop"),
    "stop_text": ("base_stock", ["stop=soon"], "stop"),
    "stop_too_many": ("base_stock", ["stop=1,2,3"], "stop"),
    "allocation_unknown": ("base_stock", ["allocation=random"], "allocation"),
    "unknown_key": ("base_stock", ["colour=red"], "colour"),
    "no_equals": ("base_stock", ["level"], "level"),
    "s_nan": ("s_S", ["s=nan", "S=40"], "s"),
    "S_nan": ("s_S", ["s=10", "S=nan"], "S"),
    "s_negative": ("s_S", ["s=-5", "S=40"], "s"),
    "S_below_s": ("s_S", ["s=40", "S=10"], "S"),
    "s_without_S": ("s_S", ["s=10"], "S"),
    "S_inf": ("s_S", ["s=10", "S=inf"], "S"),
    "s_cover_nan": ("s_S", ["s_cover=nan"], "s_cover"),
    "S_cover_inf": ("s_S", ["S_cover=inf"], "S_cover"),
    "S_cover_negative": ("s_S", ["s_cover=-2", "S_cover=-1"], "cover"),
    "split_negative": ("fixed_split", ["split=-1,5"], "split"),
    "split_nan": ("fixed_split", ["split=nan,1"], "split"),
    "split_all_zero": ("fixed_split", ["split=0,0"], "split"),
    "split_wrong_count": ("fixed_split", ["split=1,2,3"], "split"),
    "split_inf": ("fixed_split", ["split=inf,1"], "split"),
    "quantities_nan": ("fixed", ["quantities=nan"], "quantities"),
    "quantity_negative": ("fixed", ["quantity=-5"], "quantity"),
    "quantity_inf": ("fixed", ["quantity=inf"], "quantity"),
    "quantities_wrong_count": ("fixed", ["quantities=1,2,3"], "quantities"),
    "fixed_without_quantity": ("fixed", [], "quantities"),
    "proportional_allocation": ("proportional", ["allocation=priority"], "allocation"),
    "oracle_with_param": ("oracle", ["level=3"], "level"),
    "unknown_policy": ("teleport", [], "teleport"),
}
for _name, (_policy, _pairs, _fragment) in PARAMS.items():
    _argv = ["simulate", "--scenario", "tiny", "--policy", _policy]
    for _pair in _pairs:
        _argv += ["--param", _pair]
    case(f"param/{_name}", _argv, {}, (_fragment,))
# The same parameters through compare's policy specs.
for _name in ("level_nan", "level_negative", "cover_inf", "stop_negative", "split_negative", "S_nan"):
    _policy, _pairs, _fragment = PARAMS[_name]
    case(
        f"param-compare/{_name}",
        [
            "compare",
            "--scenario",
            "tiny",
            "--episodes",
            "2",
            "--out",
            "{w}/out",
            "--policy",
            f"{_policy}:{','.join(_pairs) if len(_pairs) == 1 else _pairs[0]}",
            "--policy",
            "base_stock",
        ]
        if _name != "S_nan"
        else [
            "compare",
            "--scenario",
            "tiny",
            "--episodes",
            "2",
            "--out",
            "{w}/out",
            "--policy",
            "s_S:s=10:S=nan",
            "--policy",
            "base_stock",
        ],
        {},
        (_fragment,),
    )


def _params_file(policy: str = "base_stock", scenario: str = "tiny", params: Any = None) -> dict:
    return {"policy": policy, "scenario": scenario, "params": {"cover": "2.5"} if params is None else params}


PARAMS_FILES: dict[str, tuple[Any, str]] = {
    "binary": (bytes(range(256)) * 4, "params.yaml"),
    "not_yaml": ("policy: [\n", "not valid YAML"),
    "a_list": ("- 1\n- 2\n", "mapping"),
    "empty": ("", "mapping"),
    "missing_params": ({"policy": "base_stock", "scenario": "tiny"}, "params"),
    "other_policy": (_params_file(policy="s_S"), "s_S"),
    "other_scenario": (_params_file(scenario="retail"), "retail"),
    "params_empty": (_params_file(params={}), "params"),
    "params_list": (_params_file(params=[1, 2]), "params"),
    "params_value_mapping": (_params_file(params={"cover": {"a": 1}}), "params.cover"),
    "params_nan": (_params_file(params={"cover": float("nan")}), "cover"),
    "params_level_negative": (_params_file(params={"level": -10}), "level"),
    "params_unknown_key": (_params_file(params={"colour": "red"}), "colour"),
    "policy_list": (_params_file(policy=["base_stock"]), "policy"),
    "alias_bomb": (alias_bomb(8), "alias"),
    "self_alias": ("policy: &x [*x]\n", "itself"),
    "deep": ("policy: " + "[" * 3000 + "]" * 3000 + "\n", "nest"),
    "duplicate_key": ("policy: base_stock\npolicy: s_S\nscenario: tiny\nparams: {cover: 2}\n", "duplicate"),
}
for _name, (_content, _fragment) in PARAMS_FILES.items():
    case(
        f"params-file/{_name}",
        ["simulate", "--scenario", "tiny", "--policy", "base_stock", "--params", "{w}/params.yaml"],
        {"params.yaml": _content},
        ("params.yaml", _fragment),
    )
case("params-file/missing", ["simulate", "--scenario", "tiny", "--params", "{w}/none.yaml"], {}, ("none.yaml",))
case("params-file/directory", ["simulate", "--scenario", "tiny", "--params", "{w}/pdir"], {"pdir/x": "1"}, ("pdir",))
case(
    "params-file/compare_missing",
    ["compare", "--scenario", "tiny", "--out", "{w}/out", "--policy", "base_stock@{w}/none.yaml", "--policy", "s_S"],
    {},
    ("none.yaml",),
)
case(
    "params-file/compare_other_policy",
    ["compare", "--scenario", "tiny", "--out", "{w}/out", "--policy", "s_S@{w}/params.yaml", "--policy", "base_stock"],
    {"params.yaml": _params_file()},
    ("params.yaml", "base_stock"),
)
case(
    "params-file/compare_nan",
    ["compare", "--scenario", "tiny", "--out", "{w}/out", "--policy", "base_stock@{w}/params.yaml", "--policy", "s_S"],
    {"params.yaml": _params_file(params={"cover": "nan"})},
    ("params.yaml", "cover"),
)


# ---------------------------------------------------------------------------------------------
# 5. Command-line options
# ---------------------------------------------------------------------------------------------

OPTIONS: dict[str, tuple[list[str], dict, tuple[str, ...]]] = {
    # simulate
    "simulate/seed_negative": (["simulate", "--scenario", "tiny", "--seed", "-1"], {}, ("--seed",)),
    "simulate/seed_huge": (["simulate", "--scenario", "tiny", "--seed", str(2**70)], {}, ("--seed",)),
    "simulate/seed_text": (["simulate", "--scenario", "tiny", "--seed", "abc"], {}, ("--seed",)),
    "simulate/episodes_zero": (["simulate", "--scenario", "tiny", "--episodes", "0"], {}, ("--episodes",)),
    "simulate/episodes_huge": (["simulate", "--scenario", "tiny", "--episodes", "1000000000"], {}, ("--episodes",)),
    "simulate/periods_zero": (["simulate", "--scenario", "tiny", "--periods", "0"], {}, ("--periods",)),
    "simulate/periods_1e9": (["simulate", "--scenario", "tiny", "--periods", "1000000000"], {}, ("--periods",)),
    "simulate/periods_1e25": (["simulate", "--scenario", "tiny", "--periods", str(10**25)], {}, ("--periods",)),
    "simulate/periods_float": (["simulate", "--scenario", "tiny", "--periods", "2.5"], {}, ("--periods",)),
    "simulate/audit_log_dir": (
        ["simulate", "--scenario", "tiny", "--audit-log", "{w}/adir"],
        {"adir/x": "1"},
        ("--audit-log", "adir"),
    ),
    "simulate/audit_log_extension": (
        ["simulate", "--scenario", "tiny", "--audit-log", "{w}/audit.txt"],
        {},
        ("--audit-log", "audit.txt"),
    ),
    "simulate/audit_log_is_file_parent": (
        ["simulate", "--scenario", "tiny", "--audit-log", "{w}/f.txt/a.csv"],
        {"f.txt": "x"},
        ("--audit-log",),
    ),
    "simulate/plot_skus_unknown": (
        ["simulate", "--scenario", "tiny", "--plot", "{w}/plots", "--plot-skus", "widget,nosuch"],
        {},
        ("--plot-skus", "nosuch"),
    ),
    "simulate/plot_dcs_unknown": (
        ["simulate", "--scenario", "tiny", "--plot", "{w}/plots", "--plot-dcs", "dc_mars"],
        {},
        ("--plot-dcs", "dc_mars"),
    ),
    "simulate/plot_skus_without_plot": (
        ["simulate", "--scenario", "tiny", "--plot-skus", "widget"],
        {},
        ("--plot-skus",),
    ),
    "simulate/plot_dir_is_file": (
        ["simulate", "--scenario", "tiny", "--plot", "{w}/plots.png"],
        {"plots.png": "x"},
        ("--plot", "plots.png"),
    ),
    "simulate/statements_dir_is_file": (
        ["simulate", "--scenario", "tiny", "--statements", "{w}/st.csv"],
        {"st.csv": "x"},
        ("--statements", "st.csv"),
    ),
    "simulate/statements_parent_missing": (
        ["simulate", "--scenario", "tiny", "--statements", "{w}/no/such/st"],
        {},
        ("--statements",),
    ),
    "simulate/policy_rules_missing": (["simulate", "--scenario", "tiny", "--policy", "rules:{w}/none"], {}, ("none",)),
    "simulate/policy_run_bad_store": (
        ["simulate", "--scenario", "tiny", "--policy", "run:abc", "--tracking-uri", "sqlite:///{w}/no/such/mlflow.db"],
        {},
        ("mlflow.db",),
    ),
    "simulate/policy_run_missing_store": (
        ["simulate", "--scenario", "tiny", "--policy", "run:abc", "--tracking-uri", "sqlite:///{w}/mlflow.db"],
        {},
        ("mlflow.db",),
    ),
    "simulate/policy_models_bad_scheme": (
        ["simulate", "--scenario", "tiny", "--policy", "models:/x@champion", "--tracking-uri", "gopher://x"],
        {},
        ("gopher://x",),
    ),
    "simulate/policy_run_with_param": (
        ["simulate", "--scenario", "tiny", "--policy", "run:abc", "--param", "a=1"],
        {},
        ("--policy run:abc",),
    ),
    "simulate/unknown_option": (["simulate", "--scenaro", "tiny"], {}, ("--scenaro",)),
    "simulate/scenario_missing": (["simulate", "--scenario", "{w}/none.yaml"], {}, ("none.yaml",)),
    # tune
    "tune/seeds_text": (["tune", "--scenario", "tiny", "--seeds", "a-b", "--out", "{w}/t.yaml"], {}, ("--seeds",)),
    "tune/seeds_reversed": (["tune", "--scenario", "tiny", "--seeds", "5-1", "--out", "{w}/t.yaml"], {}, ("--seeds",)),
    "tune/seeds_negative": (["tune", "--scenario", "tiny", "--seeds=-3", "--out", "{w}/t.yaml"], {}, ("--seeds",)),
    "tune/seeds_empty": (["tune", "--scenario", "tiny", "--seeds", "", "--out", "{w}/t.yaml"], {}, ("--seeds",)),
    "tune/seeds_huge_range": (
        ["tune", "--scenario", "tiny", "--seeds", "0-1000000000000", "--out", "{w}/t.yaml"],
        {},
        ("--seeds",),
    ),
    "tune/seeds_huge_number": (
        ["tune", "--scenario", "tiny", "--seeds", str(10**30), "--out", "{w}/t.yaml"],
        {},
        ("--seeds",),
    ),
    "tune/budget_zero": (["tune", "--scenario", "tiny", "--budget", "0", "--out", "{w}/t.yaml"], {}, ("--budget",)),
    "tune/out_dir": (
        ["tune", "--scenario", "tiny", "--seeds", "0-1", "--out", "{w}/odir"],
        {"odir/x": "1"},
        ("--out", "odir"),
    ),
    "tune/out_parent_is_file": (
        ["tune", "--scenario", "tiny", "--seeds", "0-1", "--out", "{w}/f.txt/t.yaml"],
        {"f.txt": "x"},
        ("--out",),
    ),
    "tune/policy_oracle": (
        ["tune", "--scenario", "tiny", "--policy", "oracle", "--out", "{w}/t.yaml"],
        {},
        ("oracle",),
    ),
    "tune/policy_replay": (
        ["tune", "--scenario", "tiny", "--policy", "replay", "--out", "{w}/t.yaml"],
        {},
        ("replay",),
    ),
    "tune/policy_unknown": (["tune", "--scenario", "tiny", "--policy", "magic", "--out", "{w}/t.yaml"], {}, ("magic",)),
    "tune/search_seed_negative": (
        ["tune", "--scenario", "tiny", "--search-seed", "-1", "--out", "{w}/t.yaml"],
        {},
        ("--search-seed",),
    ),
    "tune/scenario_missing": (["tune", "--scenario", "{w}/none.yaml", "--out", "{w}/t.yaml"], {}, ("none.yaml",)),
    # compare
    "compare/episodes_zero": (
        [
            "compare",
            "--scenario",
            "tiny",
            "--episodes",
            "0",
            "--policy",
            "base_stock",
            "--policy",
            "s_S",
            "--out",
            "{w}/out",
        ],
        {},
        ("--episodes",),
    ),
    "compare/episodes_huge": (
        [
            "compare",
            "--scenario",
            "tiny",
            "--episodes",
            "1000000000",
            "--policy",
            "base_stock",
            "--policy",
            "s_S",
            "--out",
            "{w}/out",
        ],
        {},
        ("--episodes",),
    ),
    "compare/seed_negative": (
        [
            "compare",
            "--scenario",
            "tiny",
            "--seed",
            "-5",
            "--policy",
            "base_stock",
            "--policy",
            "s_S",
            "--out",
            "{w}/out",
        ],
        {},
        ("--seed",),
    ),
    "compare/no_policy": (["compare", "--scenario", "tiny", "--out", "{w}/out"], {}, ("--policy",)),
    "compare/one_policy": (
        ["compare", "--scenario", "tiny", "--policy", "base_stock", "--out", "{w}/out"],
        {},
        ("--policy",),
    ),
    "compare/unknown_policy": (
        ["compare", "--scenario", "tiny", "--policy", "magic", "--policy", "s_S", "--out", "{w}/out"],
        {},
        ("magic",),
    ),
    "compare/out_is_file": (
        ["compare", "--scenario", "tiny", "--policy", "base_stock", "--policy", "s_S", "--out", "{w}/out.txt"],
        {"out.txt": "keep me"},
        ("out.txt",),
    ),
    "compare/out_parent_is_file": (
        ["compare", "--scenario", "tiny", "--policy", "base_stock", "--policy", "s_S", "--out", "{w}/f.txt/out"],
        {"f.txt": "x"},
        ("f.txt",),
    ),
    "compare/out_foreign_folder": (
        ["compare", "--scenario", "tiny", "--policy", "base_stock", "--policy", "s_S", "--out", "{w}/mine"],
        {"mine/thesis.docx": "precious"},
        ("mine",),
    ),
    "compare/reference_unknown": (
        [
            "compare",
            "--scenario",
            "tiny",
            "--policy",
            "base_stock",
            "--policy",
            "s_S",
            "--reference",
            "magic",
            "--out",
            "{w}/out",
        ],
        {},
        ("--reference",),
    ),
    "compare/processes_zero": (
        [
            "compare",
            "--scenario",
            "tiny",
            "--policy",
            "base_stock",
            "--policy",
            "s_S",
            "--processes",
            "0",
            "--out",
            "{w}/out",
        ],
        {},
        ("--processes",),
    ),
    "compare/processes_huge": (
        [
            "compare",
            "--scenario",
            "tiny",
            "--policy",
            "base_stock",
            "--policy",
            "s_S",
            "--processes",
            "100000",
            "--out",
            "{w}/out",
        ],
        {},
        ("--processes",),
    ),
    "compare/rules_missing": (
        ["compare", "--scenario", "tiny", "--policy", "base_stock", "--policy", "rules:{w}/none", "--out", "{w}/out"],
        {},
        ("none",),
    ),
    "compare/run_bad_store": (
        [
            "compare",
            "--scenario",
            "tiny",
            "--policy",
            "base_stock",
            "--policy",
            "run:abc",
            "--tracking-uri",
            "gopher://x",
            "--out",
            "{w}/out",
        ],
        {},
        ("gopher://x",),
    ),
    "compare/duplicate_policy": (
        ["compare", "--scenario", "tiny", "--policy", "base_stock", "--policy", "base_stock", "--out", "{w}/out"],
        {},
        ("base_stock",),
    ),
    "compare/scenario_missing": (
        ["compare", "--scenario", "{w}/none.yaml", "--policy", "base_stock", "--policy", "s_S", "--out", "{w}/out"],
        {},
        ("none.yaml",),
    ),
    # train
    "train/missing_experiment": (
        ["train", "{w}/none.yaml", "--tracking-uri", "sqlite:///{w}/mlflow.db"],
        {},
        ("none.yaml",),
    ),
    "train/unknown_name": (
        ["train", "no_such_experiment", "--tracking-uri", "sqlite:///{w}/mlflow.db"],
        {},
        ("no_such_experiment",),
    ),
    "train/timesteps_zero": (["train", "tiny_smoke", "--timesteps", "0"], {}, ("--timesteps",)),
    "train/timesteps_huge": (
        ["train", "{w}/exp.yaml", "--timesteps", str(10**25), "--tracking-uri", "sqlite:///{w}/mlflow.db"],
        {"exp.yaml": EXPERIMENT},
        ("timesteps",),
    ),
    "train/seed_negative": (["train", "tiny_smoke", "--seed", "-1"], {}, ("--seed",)),
    "train/seed_huge": (
        ["train", "{w}/exp.yaml", "--seed", str(2**70), "--tracking-uri", "sqlite:///{w}/mlflow.db"],
        {"exp.yaml": EXPERIMENT},
        ("seed",),
    ),
    "train/both_resume_and_experiment": (["train", "tiny_smoke", "--resume", "abc"], {}, ("--resume",)),
    "train/neither": (["train"], {}, ("EXPERIMENT",)),
    "train/resume_with_seed": (["train", "--resume", "abc", "--seed", "3"], {}, ("--seed",)),
    "train/resume_missing_store": (
        ["train", "--resume", "abc", "--tracking-uri", "sqlite:///{w}/mlflow.db"],
        {},
        ("mlflow.db",),
    ),
    "train/directory": (["train", "{w}/edir", "--tracking-uri", "sqlite:///{w}/mlflow.db"], {"edir/x": "1"}, ("edir",)),
    # export
    "export/missing_store": (
        ["export", "--run", "abc", "--out", "{w}/table", "--tracking-uri", "sqlite:///{w}/mlflow.db"],
        {},
        ("mlflow.db",),
    ),
    "export/bad_scheme": (
        ["export", "--run", "abc", "--out", "{w}/table", "--tracking-uri", "gopher://x"],
        {},
        ("gopher://x",),
    ),
    "export/out_is_file": (
        ["export", "--run", "abc", "--out", "{w}/t.txt", "--tracking-uri", "sqlite:///{w}/mlflow.db"],
        {"t.txt": "x"},
        ("t.txt",),
    ),
    "export/max_rules_zero": (
        ["export", "--run", "abc", "--out", "{w}/table", "--max-rules", "0"],
        {},
        ("--max-rules",),
    ),
    "export/seed_negative": (
        ["export", "--run", "abc", "--out", "{w}/table", "--seed", "-1", "--tracking-uri", "sqlite:///{w}/mlflow.db"],
        {},
        ("--seed",),
    ),
    "export/iterations_zero": (
        ["export", "--run", "abc", "--out", "{w}/table", "--iterations", "0"],
        {},
        ("--iterations",),
    ),
    "export/no_run": (["export", "--out", "{w}/table"], {}, ("--run",)),
    "export/out_foreign_folder": (
        ["export", "--run", "abc", "--out", "{w}/mine", "--tracking-uri", "sqlite:///{w}/mlflow.db"],
        {"mine/thesis.docx": "precious"},
        ("mine",),
    ),
    # scenario and rules sub-commands
    "scenario/no_argument": (["scenario", "validate"], {}, ("PATH",)),
    "scenario/unknown_subcommand": (["scenario", "check", "tiny"], {}, ("check",)),
    "rules/verify_missing_dir": (["rules", "verify", "{w}/none"], {}, ("none",)),
    "rules/verify_a_file": (["rules", "verify", "{w}/f.txt"], {"f.txt": "x"}, ("f.txt",)),
    "rules/show_missing_dir": (["rules", "show", "{w}/none"], {}, ("none",)),
    "rules/diff_missing": (["rules", "diff", "{w}/a", "{w}/b"], {}, ("a",)),
    "rules/approve_missing": (
        [
            "rules",
            "approve",
            "{w}/none",
            "--reviewer",
            "me",
            "--comment",
            "ok",
            "--tracking-uri",
            "sqlite:///{w}/mlflow.db",
        ],
        {},
        ("none",),
    ),
    "top/unknown_command": (["simulat"], {}, ("simulat",)),
    # quickstart (every check happens before training starts)
    "quickstart/out_is_file": (["quickstart", "--out", "{w}/q.txt"], {"q.txt": "x"}, ("--out", "q.txt")),
    "quickstart/out_parent_is_file": (["quickstart", "--out", "{w}/f.txt/q"], {"f.txt": "x"}, ("--out", "f.txt")),
    "quickstart/report_is_file": (["quickstart", "--out", "{w}/q"], {"q/report": "x"}, ("report",)),
    "quickstart/report_foreign": (["quickstart", "--out", "{w}/q"], {"q/report/notes.txt": "mine"}, ("report",)),
    "quickstart/rules_foreign": (["quickstart", "--out", "{w}/q"], {"q/rules/notes.txt": "mine"}, ("rules",)),
    "quickstart/bad_store": (["quickstart", "--out", "{w}/q", "--tracking-uri", "gopher://x"], {}, ("gopher://x",)),
    "quickstart/garbage_store": (
        ["quickstart", "--out", "{w}/q", "--tracking-uri", "sqlite:///{w}/g.db"],
        {"g.db": b"garbage" * 50},
        ("g.db",),
    ),
    "quickstart/episodes_one": (["quickstart", "--episodes", "1"], {}, ("--episodes",)),
    "quickstart/timesteps_zero": (["quickstart", "--timesteps", "0"], {}, ("--timesteps",)),
}
for _name, (_argv, _files, _expect) in OPTIONS.items():
    case(f"option/{_name}", _argv, _files, _expect)
case(
    "option/subprocess_seed_negative",
    ["simulate", "--scenario", "tiny", "--seed", "-1"],
    {},
    ("--seed",),
    subprocess=True,
)
case(
    "option/subprocess_tune_out_dir",
    ["tune", "--scenario", "tiny", "--seeds", "0-1", "--out", "{w}/odir"],
    {"odir/x": "1"},
    ("--out", "odir"),
    subprocess=True,
)


# ---------------------------------------------------------------------------------------------
# 6. Experiment YAML (`invalloc train FILE`): refused before any MLflow run exists
# ---------------------------------------------------------------------------------------------

EXPERIMENTS: dict[str, tuple[Any, str]] = {
    "learning_rate_text": ({"hyperparameters.learning_rate": "fast"}, "hyperparameters.learning_rate"),
    "learning_rate_zero": ({"hyperparameters.learning_rate": 0}, "hyperparameters.learning_rate"),
    "learning_rate_negative": ({"hyperparameters.learning_rate": -0.1}, "hyperparameters.learning_rate"),
    "learning_rate_nan": ({"hyperparameters.learning_rate": float("nan")}, "hyperparameters.learning_rate"),
    "learning_rate_inf": ({"hyperparameters.learning_rate": float("inf")}, "hyperparameters.learning_rate"),
    "learning_rate_list": ({"hyperparameters.learning_rate": [0.1]}, "hyperparameters.learning_rate"),
    "n_steps_negative": ({"hyperparameters.n_steps": -5}, "hyperparameters.n_steps"),
    "n_steps_zero": ({"hyperparameters.n_steps": 0}, "hyperparameters.n_steps"),
    "n_steps_half": ({"hyperparameters.n_steps": 64.5}, "hyperparameters.n_steps"),
    "n_steps_one_env_one": ({"hyperparameters.n_steps": 1, "hyperparameters.batch_size": 2}, "hyperparameters.n_steps"),
    "n_steps_huge": ({"hyperparameters.n_steps": 10**12}, "hyperparameters.n_steps"),
    "batch_size_zero": ({"hyperparameters.batch_size": 0}, "hyperparameters.batch_size"),
    "batch_size_nan": ({"hyperparameters.batch_size": float("nan")}, "hyperparameters.batch_size"),
    "batch_size_text": ({"hyperparameters.batch_size": "big"}, "hyperparameters.batch_size"),
    "batch_size_one": ({"hyperparameters.batch_size": 1}, "hyperparameters.batch_size"),
    "batch_size_above_rollout": ({"hyperparameters.batch_size": 1000}, "hyperparameters.batch_size"),
    "n_epochs_zero": ({"hyperparameters.n_epochs": 0}, "hyperparameters.n_epochs"),
    "gamma_7_5": ({"hyperparameters.gamma": 7.5}, "hyperparameters.gamma"),
    "gamma_negative": ({"hyperparameters.gamma": -0.5}, "hyperparameters.gamma"),
    "gamma_nan": ({"hyperparameters.gamma": float("nan")}, "hyperparameters.gamma"),
    "gae_lambda_2": ({"hyperparameters.gae_lambda": 2}, "hyperparameters.gae_lambda"),
    "clip_range_negative": ({"hyperparameters.clip_range": -0.2}, "hyperparameters.clip_range"),
    "ent_coef_nan": ({"hyperparameters.ent_coef": float("nan")}, "hyperparameters.ent_coef"),
    "ent_coef_text": ({"hyperparameters.ent_coef": "auto"}, "hyperparameters.ent_coef"),
    "vf_coef_negative": ({"hyperparameters.vf_coef": -1}, "hyperparameters.vf_coef"),
    "max_grad_norm_zero": ({"hyperparameters.max_grad_norm": 0}, "hyperparameters.max_grad_norm"),
    "target_kl_negative": ({"hyperparameters.target_kl": -0.01}, "hyperparameters.target_kl"),
    "unknown_hyperparameter": ({"hyperparameters.learning_speed": 3}, "hyperparameters.learning_speed"),
    "hyperparameters_list": ({"hyperparameters": [1, 2]}, "hyperparameters"),
    "net_arch_zero": ({"policy.net_arch": [0]}, "policy.net_arch"),
    "net_arch_negative": ({"policy.net_arch": [-8]}, "policy.net_arch"),
    "net_arch_huge": ({"policy.net_arch": [10**9]}, "policy.net_arch"),
    "net_arch_seventeen_layers": ({"policy.net_arch": [8] * 17}, "policy.net_arch"),
    "net_arch_text": ({"policy.net_arch": "big"}, "policy.net_arch"),
    "activation_unknown": ({"policy.activation": "sigmoid"}, "policy.activation"),
    "log_std_init_nan": ({"policy.log_std_init": float("nan")}, "policy.log_std_init"),
    "log_std_init_1e300": ({"policy.log_std_init": 1e300}, "policy.log_std_init"),
    "n_envs_zero": ({"env.n_envs": 0}, "env.n_envs"),
    "vec_env_unknown": ({"env.vec_env": "threads"}, "env.vec_env"),
    "projection_penalty_nan": ({"env.projection_penalty": float("nan")}, "env.projection_penalty"),
    "projection_penalty_inf": ({"env.projection_penalty": float("inf")}, "env.projection_penalty"),
    "reward_scale_nan": ({"env.reward_scale": float("nan")}, "env.reward_scale"),
    "reward_scale_inf": ({"env.reward_scale": float("inf")}, "env.reward_scale"),
    "reward_scale_zero": ({"env.reward_scale": 0}, "env.reward_scale"),
    "clip_obs_nan": ({"vec_normalize.clip_obs": float("nan")}, "vec_normalize.clip_obs"),
    "timesteps_zero": ({"timesteps": 0}, "timesteps"),
    "timesteps_1e25": ({"timesteps": 10**25}, "timesteps"),
    "seed_negative": ({"seed": -1}, "seed"),
    "seed_huge": ({"seed": 2**70}, "seed"),
    "evaluation_episodes_zero": ({"evaluation.episodes": 0}, "evaluation.episodes"),
    "evaluation_first_seed_negative": ({"evaluation.first_seed": -1}, "evaluation.first_seed"),
    "checkpoint_zero": ({"checkpoint_every_timesteps": 0}, "checkpoint_every_timesteps"),
    "torch_threads_zero": ({"torch_threads": 0}, "torch_threads"),
    "algorithm_unknown": ({"algorithm": "DQN"}, "algorithm"),
    "name_with_slash": ({"name": "a/b"}, "name"),
    "unknown_key": ({"epochs": 3}, "epochs"),
    "scenario_missing": ({"scenario": "no_such_scenario"}, "scenario"),
    "scenario_overrides_bad": ({"scenario_overrides": {"episode": {"horizon": -3}}}, "episode.horizon"),
    "scenario_overrides_1e308": ({"scenario_overrides": {"finance": {"opening_cash": 1e308}}}, "finance.opening_cash"),
    "scenario_overrides_text": ({"scenario_overrides": "x"}, "scenario_overrides"),
    "sac_buffer_zero": ({"algorithm": "SAC", "hyperparameters": {"buffer_size": 0}}, "hyperparameters.buffer_size"),
    "sac_tau_2": ({"algorithm": "SAC", "hyperparameters": {"tau": 2}}, "hyperparameters.tau"),
    "sac_train_freq_zero": ({"algorithm": "SAC", "hyperparameters": {"train_freq": 0}}, "hyperparameters.train_freq"),
    "td3_policy_delay_zero": (
        {"algorithm": "TD3", "hyperparameters": {"policy_delay": 0}},
        "hyperparameters.policy_delay",
    ),
    "a2c_n_steps_negative": ({"algorithm": "A2C", "hyperparameters": {"n_steps": -5}}, "hyperparameters.n_steps"),
    # Anchored actions, feature observations and ARS.
    "anchored_without_anchor": ({"env.action_mode": "anchored"}, "env.anchor"),
    "anchor_with_compact_actions": ({"env.anchor": "base_stock"}, "env.anchor"),
    "anchor_unknown_rule": ({"env.action_mode": "anchored", "env.anchor": "clever_rule"}, "env.anchor"),
    "anchor_fixed_quantities": ({"env.action_mode": "anchored", "env.anchor": "fixed:quantity=3"}, "env.anchor"),
    "anchor_bad_parameter": ({"env.action_mode": "anchored", "env.anchor": "base_stock:cover=-2"}, "env.anchor"),
    "anchor_missing_params_file": (
        {"env.action_mode": "anchored", "env.anchor": "base_stock@no_such_file.yaml"},
        "env.anchor",
    ),
    "anchor_not_a_spec": ({"env.action_mode": "anchored", "env.anchor": "base stock!"}, "env.anchor"),
    "action_mode_unknown": ({"env.action_mode": "residual"}, "env.action_mode"),
    "features_unknown": ({"env.observation": "features", "env.features": ["days_left"]}, "env.features"),
    "features_twice": (
        {"env.observation": "features", "env.features": ["days_remaining", "days_remaining"]},
        "env.features",
    ),
    "features_with_full_observation": ({"env.features": ["days_remaining"]}, "env.features"),
    "features_empty": ({"env.observation": "features", "env.features": []}, "env.features"),
    "time_basis_with_full_observation": ({"env.time_basis": 4}, "env.time_basis"),
    "time_basis_negative": ({"env.observation": "features", "env.time_basis": -1}, "env.time_basis"),
    "time_basis_huge": ({"env.observation": "features", "env.time_basis": 1000}, "env.time_basis"),
    "ars_n_top_above_n_delta": (
        {"algorithm": "ARS", "hyperparameters": {"n_delta": 4, "n_top": 8}},
        "hyperparameters.n_top",
    ),
    "ars_delta_std_zero": ({"algorithm": "ARS", "hyperparameters": {"delta_std": 0}}, "hyperparameters.delta_std"),
    "ars_n_delta_zero": ({"algorithm": "ARS", "hyperparameters": {"n_delta": 0}}, "hyperparameters.n_delta"),
    "ars_n_eval_episodes_text": (
        {"algorithm": "ARS", "hyperparameters": {"n_eval_episodes": "two"}},
        "hyperparameters.n_eval_episodes",
    ),
    "ars_takes_no_n_steps": ({"algorithm": "ARS", "hyperparameters": {"n_steps": 64}}, "hyperparameters.n_steps"),
}
for _name, (_changes, _field) in EXPERIMENTS.items():
    _data = mutated(EXPERIMENT, _changes)
    case(
        f"experiment/{_name}",
        ["train", "{w}/exp.yaml", "--tracking-uri", "sqlite:///{w}/mlflow.db"],
        {"exp.yaml": _data},
        ("exp.yaml", _field),
    )
_EXPERIMENT_FILES: dict[str, tuple[Any, str]] = {
    "binary": (bytes(range(256)) * 4, "exp.yaml"),
    "latin1": ("name: caf\xe9\n".encode("latin-1"), "UTF-8"),
    "empty": ("", "mapping"),
    "a_list": ("- 1\n", "mapping"),
    "not_yaml": ("name: [\n", "not valid YAML"),
    "alias_bomb": (alias_bomb(9), "alias"),
    "self_alias": ("name: &x [*x]\n", "itself"),
    "deep": ("name: " + "[" * 5000 + "]" * 5000 + "\n", "nest"),
    "huge": ("# " + "x" * (11 * 1024 * 1024) + "\nname: a\n", "MB"),
    "duplicate_key": (dump(EXPERIMENT) + "seed: 3\n", "duplicate"),
}
for _name, (_content, _fragment) in _EXPERIMENT_FILES.items():
    case(
        f"experiment-file/{_name}",
        ["train", "{w}/exp.yaml", "--tracking-uri", "sqlite:///{w}/mlflow.db"],
        {"exp.yaml": _content},
        ("exp.yaml", _fragment),
    )
case(
    "experiment-file/subprocess_learning_rate",
    ["train", "{w}/exp.yaml", "--tracking-uri", "sqlite:///{w}/mlflow.db"],
    {"exp.yaml": mutated(EXPERIMENT, {"hyperparameters.learning_rate": "fast"})},
    ("exp.yaml", "hyperparameters.learning_rate"),
    subprocess=True,
)

# `invalloc sweep`: every --set key and value is checked against the experiment schema before a
# cluster starts or a run exists (one line naming the --set key).
_STORE = ["--tracking-uri", "sqlite:///{w}/mlflow.db"]
SWEEPS: dict[str, tuple[list[str], dict, tuple[str, ...]]] = {
    "unknown_key": (["--set", "hyperparamters.learning_rate=0.1"], {}, ("--set hyperparamters", "unknown key")),
    "not_a_hyperparameter": (["--set", "hyperparameters.learnin_rate=0.1"], {}, ("hyperparameters.learnin_rate",)),
    "value_not_a_number": (
        ["--set", "hyperparameters.learning_rate=fast"],
        {},
        ("hyperparameters.learning_rate=fast",),
    ),
    "value_out_of_range": (
        ["--set", "hyperparameters.learning_rate=0.001,-1"],
        {},
        ("hyperparameters.learning_rate=-1", "must be"),
    ),
    "timesteps_zero": (["--set", "timesteps=256,0"], {}, ("--set timesteps=0",)),
    "batch_above_rollout": (["--set", "hyperparameters.batch_size=64,512"], {}, ("hyperparameters.batch_size=512",)),
    "settings_clash": (
        ["--set", "env.n_envs=2,1", "--set", "hyperparameters.batch_size=64,256"],
        {},
        ("env.n_envs=1", "hyperparameters.batch_size=256"),
    ),
    "value_is_not_a_section": (["--set", "timesteps.every=1"], {}, ("--set timesteps.every", "not a section")),
    "scenario_override": (["--set", "scenario_overrides.episode.horizon=-3"], {}, ("episode.horizon",)),
    "net_arch_not_a_list": (["--set", "policy.net_arch=[64,64],wide"], {}, ("policy.net_arch=wide",)),
    "no_equals": (["--set", "learning_rate"], {}, ("--set learning_rate", "KEY=VALUE")),
    "empty_value": (["--set", "timesteps=256,"], {}, ("--set timesteps", "empty value")),
    "value_twice": (["--set", "timesteps=256,256"], {}, ("--set timesteps", "twice")),
    "key_twice": (["--set", "timesteps=256", "--set", "timesteps=512"], {}, ("--set timesteps", "twice")),
    "bad_key_syntax": (["--set", "hyper parameters=1"], {}, ("hyper parameters",)),
    "seed_key": (["--set", "seed=1,2"], {}, ("--set seed", "--seeds")),
    "name_key": (["--set", "name=other"], {}, ("--set name",)),
    "scenario_key": (["--set", "scenario=retail"], {}, ("--set scenario",)),
    "seeds_reversed": (["--seeds", "3-1"], {}, ("--seeds 3-1",)),
    "seeds_too_large": (["--seeds", str(2**32)], {}, ("--seeds",)),
    "samples_with_grid": (["--samples", "3"], {}, ("--samples",)),
    "random_without_samples": (["--search", "random"], {}, ("--search random", "--samples")),
    "unknown_search": (["--search", "bayes"], {}, ("--search bayes",)),
    "optuna_without_settings": (["--search", "optuna", "--samples", "2"], {}, ("--search optuna", "--set")),
    "max_concurrent_zero": (["--max-concurrent", "0"], {}, ("--max-concurrent",)),
    "address_malformed": (["--address", "nowhere"], {}, ("--address nowhere",)),
    "address_unreachable": (["--address", "127.0.0.1:1"], {}, ("--address 127.0.0.1:1",)),
    "register_blank": (["--register", " "], {}, ("--register",)),
    "store_scheme": (["--tracking-uri", "gopher://x"], {}, ("gopher://x",)),
}
for _name, (_argv, _files, _expect) in SWEEPS.items():
    _store = [] if "--tracking-uri" in _argv else _STORE
    case(f"sweep/{_name}", ["sweep", "tiny_smoke", *_argv, *_store], _files, _expect)
case("sweep/missing_experiment", ["sweep", "{w}/none.yaml", *_STORE], {}, ("none.yaml",))
case(
    "sweep/bad_experiment_file",
    ["sweep", "{w}/exp.yaml", "--set", "timesteps=128,256", *_STORE],
    {"exp.yaml": mutated(EXPERIMENT, {"hyperparameters.gamma": 2})},
    ("exp.yaml", "hyperparameters.gamma"),
)
case(
    "sweep/subprocess_unknown_key",
    ["sweep", "tiny_smoke", "--set", "hyperparameters.learnin_rate=0.1,0.2", *_STORE],
    {},
    ("--set hyperparameters.learnin_rate=0.1",),
    subprocess=True,
)


# ---------------------------------------------------------------------------------------------
# 7. MLflow tracking URIs
# ---------------------------------------------------------------------------------------------


def _garbage_db(path: Path) -> None:
    path.write_bytes(b"this is not a database\x00" * 100)


def _other_sqlite(path: Path) -> None:
    import sqlite3

    with sqlite3.connect(path) as connection:
        connection.execute("create table recipes (name text)")
    connection.close()


TRACKING: dict[str, tuple[str, dict, str]] = {
    "unsupported_scheme": ("gopher://example.org/x", {}, "gopher://"),
    "garbage_text": ("::::", {}, "::::"),
    "empty_sqlite_path": ("sqlite://", {}, "sqlite://"),
    "garbage_sqlite_file": ("sqlite:///{w}/garbage.db", {"garbage.db": _garbage_db}, "garbage.db"),
    "sqlite_is_directory": ("sqlite:///{w}/dbdir", {"dbdir/x": "1"}, "dbdir"),
    "sqlite_folder_missing": ("sqlite:///{w}/no/such/mlflow.db", {}, "mlflow.db"),
    "sqlite_read_only_place": ("sqlite:////proc/mlflow.db", {}, "/proc/mlflow.db"),
    "sqlite_foreign_database": ("sqlite:///{w}/other.db", {"other.db": _other_sqlite}, "other.db"),
    "http_unreachable": ("http://127.0.0.1:9/", {}, "127.0.0.1:9"),
    "http_malformed": ("http://", {}, "http://"),
    "file_store_is_file": ("file://{w}/f.txt", {"f.txt": "x"}, "f.txt"),
    "postgres_unreachable": ("postgresql://u:p@127.0.0.1:9/db", {}, "postgresql://"),
}
for _name, (_uri, _files, _fragment) in TRACKING.items():
    case(
        f"tracking-train/{_name}",
        ["train", "{w}/exp.yaml", "--tracking-uri", _uri],
        {"exp.yaml": EXPERIMENT, **_files},
        (_fragment,),
    )
for _name in ("garbage_sqlite_file", "unsupported_scheme", "sqlite_is_directory", "sqlite_foreign_database"):
    _uri, _files, _fragment = TRACKING[_name]
    case(
        f"tracking-simulate/{_name}",
        ["simulate", "--scenario", "tiny", "--policy", "run:abc", "--tracking-uri", _uri],
        dict(_files),
        (_fragment,),
    )
    case(
        f"tracking-export/{_name}",
        ["export", "--run", "abc", "--out", "{w}/table", "--tracking-uri", _uri],
        dict(_files),
        (_fragment,),
    )
for _name in ("garbage_sqlite_file", "unsupported_scheme"):
    _uri, _files, _fragment = TRACKING[_name]
    case(
        f"tracking-compare/{_name}",
        [
            "compare",
            "--scenario",
            "tiny",
            "--episodes",
            "2",
            "--policy",
            "base_stock",
            "--policy",
            "s_S",
            "--out",
            "{w}/out",
            "--tracking-uri",
            _uri,
        ],
        dict(_files),
        (_fragment,),
    )
case(
    "tracking-train/env_variable_garbage",
    ["train", "{w}/exp.yaml"],
    {"exp.yaml": EXPERIMENT, "garbage.db": _garbage_db, "@env": {"MLFLOW_TRACKING_URI": "sqlite:///{w}/garbage.db"}},
    ("garbage.db",),
)
case(
    "tracking-train/subprocess_garbage",
    ["train", "{w}/exp.yaml", "--tracking-uri", "sqlite:///{w}/garbage.db"],
    {"exp.yaml": EXPERIMENT, "garbage.db": _garbage_db},
    ("garbage.db",),
    subprocess=True,
)


# ---------------------------------------------------------------------------------------------
# 8. Rule table directories and the states CSV of `rules decide`
# ---------------------------------------------------------------------------------------------


def _states_placeholder(path: Path) -> None:
    """A states CSV (never read: the table is refused first)."""
    path.write_text("a\n1\n")


#: The rule an anchored corpus table corrects (resolved as training resolves it).
CORPUS_ANCHOR = "priority@tuned"


def build_rule_directory(directory: Path, anchored: bool = False) -> None:
    """A valid rule table directory for `tiny` (three rules on one feature), as `export` writes it;
    ``anchored``: its outputs correct the tuned priority rule."""
    import numpy as np

    from invalloc.agents.anchor import build_anchor, resolve_anchor
    from invalloc.env.actions import ActionMapper
    from invalloc.env.features import FeatureSet
    from invalloc.export.exporter import write_table_files
    from invalloc.rules.formats import describe_features, describe_outputs
    from invalloc.rules.manifest import MANIFEST_VERSION
    from invalloc.rules.table import RuleTable, action_outputs, rule_id
    from invalloc.sim.network import compile_network
    from invalloc.sim.simulator import Simulator

    loaded = load_scenario("tiny")
    network = compile_network(loaded)
    features = FeatureSet(network)
    mode = "anchored" if anchored else "compact"
    anchor = resolve_anchor(CORPUS_ANCHOR, "tiny") if anchored else None
    rule = build_anchor(anchor) if anchor is not None else None
    names = ActionMapper(Simulator(network, check_invariants=False), mode, rule).names
    outputs = action_outputs(names, mode, CORPUS_ANCHOR)
    n = features.size
    lower, upper = np.full((3, n), -np.inf), np.full((3, n), np.inf)
    upper[0, 0], lower[1, 0], upper[1, 0], lower[2, 0] = 10.0, 10.0, 20.0, 20.0
    values = np.ones((3, len(outputs)))
    values[0, 0] = 1.5
    table = RuleTable(
        list(features.features),
        outputs,
        lower,
        upper,
        values,
        np.array([0.3, 0.3, 0.4]),
        [rule_id(lo, hi) for lo, hi in zip(lower, upper, strict=True)],
        {
            "name": "tiny_rules",
            "scenario": "tiny",
            "scenario_digest": loaded.digest,
            "feature_set_version": features.version,
            "action_mode": mode,
            "anchor": anchor,
        },
    )
    table.check()
    directory.mkdir(parents=True, exist_ok=True)
    write_table_files(table, directory)
    manifest = {
        "format": "invalloc-rule-table-manifest",
        "format_version": MANIFEST_VERSION,
        "name": directory.name,
        "scenario": {"name": "tiny", "digest": loaded.digest},
        "action_mode": mode,
        "anchor": anchor,
        "feature_set": {"version": features.version, "features": describe_features(table)},
        "outputs": describe_outputs(table),
        "review": {"status": "draft", "reviewer": None, "date": None, "comment": None},
        "fidelity": {"on_table_states": 0.97, "on_teacher_states": 0.96},
        "kpi_retention": {"profit_retention": 0.99, "rules": {"profit": 100.0}},
        "intervention_rate": 0.1,
        "registry": None,
    }
    _sign(directory, manifest)


def _sign(directory: Path, manifest: dict) -> None:
    """Hash the files into the manifest and start a fresh audit log bound to it, as `export` does.

    Applied after an edit it forges a consistent directory, so that the case reaches the file
    parsers behind the hash and audit checks (a reader must refuse such input cleanly too).
    """
    from invalloc.rules.manifest import AUDIT_LOG_FILE, append_audit, write_manifest

    write_manifest(directory, manifest)
    (directory / AUDIT_LOG_FILE).unlink(missing_ok=True)
    append_audit(directory, {"time": "2026-01-01T00:00:00+00:00", "event": "exported", "status": "draft"}, manifest)


def _rehash(directory: Path) -> None:
    from invalloc.rules.manifest import MANIFEST_FILE

    _sign(directory, json.loads((directory / MANIFEST_FILE).read_text()))


def rule_dir(
    edit: Callable[[Path], None] | None = None, rehash: bool = True, anchored: bool = False
) -> Callable[[Path], None]:
    """A file builder: a valid table in the given folder (``anchored``: correcting the tuned
    priority rule), then ``edit`` (and a re-hashed manifest)."""

    def build(directory: Path) -> None:
        build_rule_directory(directory, anchored)
        if edit is not None:
            edit(directory)
            if rehash:
                _rehash(directory)

    return build


def _edit_manifest(**changes: Any) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        path = directory / "manifest.json"
        manifest = json.loads(path.read_text())
        for key, value in changes.items():
            node = manifest
            parts = key.split("|")
            for part in parts[:-1]:
                node = node[part]
            node[parts[-1]] = value
        path.write_text(json.dumps(manifest))

    return edit


def _write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        path = directory / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)

    return edit


def _edit_rules_json(mutate: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        path = directory / "rules.json"
        document = json.loads(path.read_text())
        mutate(document)
        path.write_text(json.dumps(document))

    return edit


def _set_first_rule(key: str, value: Any) -> Callable[[dict], None]:
    def mutate(document: dict) -> None:
        document["rules"][0][key] = value

    return mutate


RULE_DIRS: dict[str, tuple[Callable[[Path], None], str]] = {
    "manifest_not_json": (rule_dir(_write("manifest.json", "{not json"), rehash=False), "manifest.json"),
    "manifest_binary": (rule_dir(_write("manifest.json", bytes(range(256))), rehash=False), "manifest.json"),
    "manifest_deep_nesting": (rule_dir(_write("manifest.json", deep_json(100_000)), rehash=False), "manifest.json"),
    "manifest_a_list": (rule_dir(_write("manifest.json", "[1, 2]"), rehash=False), "manifest.json"),
    "manifest_empty": (rule_dir(_write("manifest.json", ""), rehash=False), "manifest.json"),
    "manifest_huge": (
        rule_dir(_write("manifest.json", " " * (11 * 1024 * 1024) + "{}"), rehash=False),
        "manifest.json",
    ),
    "manifest_missing": (rule_dir(lambda d: (d / "manifest.json").unlink(), rehash=False), "manifest.json"),
    "manifest_files_list": (rule_dir(_edit_manifest(files=["rules.json"]), rehash=False), "manifest.json"),
    "manifest_file_hash_number": (rule_dir(_edit_manifest(**{"files|rules.json": 5}), rehash=False), "manifest.json"),
    "manifest_features_text": (rule_dir(_edit_manifest(**{"feature_set|features": "x"})), "manifest.json"),
    "manifest_feature_set_number": (rule_dir(_edit_manifest(feature_set=5)), "manifest.json"),
    "manifest_outputs_number": (rule_dir(_edit_manifest(outputs=5)), "manifest.json"),
    "manifest_output_step_text": (
        rule_dir(
            _edit_manifest(
                **{
                    "outputs": [
                        {
                            "name": "x",
                            "unit": "u",
                            "description": "d",
                            "action": "a",
                            "transform": "log2",
                            "step": "big",
                        }
                    ]
                }
            )
        ),
        "manifest.json",
    ),
    "manifest_scenario_number": (rule_dir(_edit_manifest(scenario=5)), "manifest.json"),
    "manifest_review_text": (rule_dir(_edit_manifest(review="approved")), "manifest.json"),
    "manifest_fidelity_text": (rule_dir(_edit_manifest(fidelity="high")), "manifest.json"),
    "manifest_name_list": (rule_dir(_edit_manifest(name=[1])), "manifest.json"),
    "manifest_file_outside": (rule_dir(_edit_manifest(**{"files|../x": "0" * 64}), rehash=False), "manifest.json"),
    "rules_json_not_json": (rule_dir(_write("rules.json", "{oops")), "rules.json"),
    "rules_json_deep_nesting": (rule_dir(_write("rules.json", deep_json(100_000))), "rules.json"),
    "rules_json_a_list": (rule_dir(_write("rules.json", "[]")), "rules.json"),
    "rules_json_binary": (rule_dir(_write("rules.json", bytes(range(256)) * 2)), "rules.json"),
    "rules_json_rules_text": (rule_dir(_edit_rules_json(lambda d: d.__setitem__("rules", "many"))), "rules.json"),
    "rules_json_rule_number": (rule_dir(_edit_rules_json(lambda d: d["rules"].__setitem__(0, 5))), "rules.json"),
    "rules_json_when_text": (rule_dir(_edit_rules_json(_set_first_rule("when", "always"))), "rules.json"),
    "rules_json_then_text": (rule_dir(_edit_rules_json(_set_first_rule("then", "x"))), "rules.json"),
    "rules_json_id_number": (rule_dir(_edit_rules_json(_set_first_rule("id", 7))), "rules.json"),
    "rules_json_support_text": (rule_dir(_edit_rules_json(_set_first_rule("support", "most"))), "rules.json"),
    "rules_json_no_rules": (rule_dir(_edit_rules_json(lambda d: d.__setitem__("rules", []))), "rules.json"),
    "rules_json_tampered": (rule_dir(_write("rules.json", "{}"), rehash=False), "rules.json"),
    "rules_csv_text_number": (
        rule_dir(lambda d: (d / "rules.csv").write_text((d / "rules.csv").read_text().replace("1.5", "lots", 1))),
        "rules.csv",
    ),
    "rules_csv_ragged": (
        rule_dir(lambda d: (d / "rules.csv").write_text((d / "rules.csv").read_text() + "x,y\n")),
        "rules.csv",
    ),
    "rules_csv_binary": (rule_dir(_write("rules.csv", bytes(range(256)) * 2)), "rules.csv"),
    "rules_dmn_garbage": (rule_dir(_write("rules.dmn", "<dmn><unclosed>")), "rules.dmn"),
    "rules_dmn_entity": (
        rule_dir(_write("rules.dmn", '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')),
        "rules.dmn",
    ),
    "rules_dmn_binary": (rule_dir(_write("rules.dmn", bytes(range(256)) * 2)), "rules.dmn"),
    "manifest_action_mode_raw": (rule_dir(_edit_manifest(action_mode="raw")), "action_mode"),
    "manifest_action_mode_number": (rule_dir(_edit_manifest(action_mode=5)), "action_mode"),
    "manifest_anchor_on_compact": (
        rule_dir(_edit_manifest(anchor={"policy": "priority", "params": {}})),
        "field anchor",
    ),
    "manifest_anchor_missing": (rule_dir(_edit_manifest(anchor=None), anchored=True), "field anchor"),
    "manifest_anchor_text": (rule_dir(_edit_manifest(anchor=CORPUS_ANCHOR), anchored=True), "field anchor"),
    "manifest_anchor_no_policy": (
        rule_dir(_edit_manifest(anchor={"params": {"cover": "2"}}), anchored=True),
        "anchor.policy",
    ),
    "manifest_anchor_params_list": (
        rule_dir(_edit_manifest(anchor={"policy": "priority", "params": {"cover": [1, 2]}}), anchored=True),
        "anchor.params",
    ),
    "manifest_anchor_params_text": (
        rule_dir(_edit_manifest(anchor={"policy": "priority", "params": "cover=2"}), anchored=True),
        "anchor.params",
    ),
    "manifest_anchor_edited": (
        rule_dir(_edit_manifest(**{"anchor|params": {"cover": "9"}}), rehash=False, anchored=True),
        "manifest fields changed",
    ),
    "audit_log_not_json": (rule_dir(_write("audit_log.jsonl", "garbage\n"), rehash=False), "audit_log.jsonl"),
    "audit_log_deep": (rule_dir(_write("audit_log.jsonl", deep_json(100_000) + "\n"), rehash=False), "audit_log.jsonl"),
}
for _name, (_builder, _fragment) in RULE_DIRS.items():
    _command = "verify" if any(k in _name for k in ("csv", "dmn")) else "show"
    case(f"rules-{_command}/{_name}", ["rules", _command, "{w}/table"], {"table": _builder}, (_fragment,))
for _name in (
    "manifest_deep_nesting",
    "rules_json_deep_nesting",
    "manifest_features_text",
    "rules_json_when_text",
    "manifest_scenario_number",
):
    _builder, _fragment = RULE_DIRS[_name]
    case(
        f"rules-simulate/{_name}",
        ["simulate", "--scenario", "tiny", "--policy", "rules:{w}/table"],
        {"table": _builder},
        (_fragment,),
    )
    case(f"rules-verify/{_name}", ["rules", "verify", "{w}/table"], {"table": _builder}, (_fragment,))
# `rules show` options on a valid table: an unknown output, sort column or rule id; a workbook
# path that is not an .xlsx file or is a folder; a malformed or unkept precision statement.
for _name, _argv, _fragment in (
    ("output_unknown", ["--output", "nosuch_multiplier"], "--output nosuch_multiplier"),
    ("output_pattern_matches_nothing", ["--output", "zz_*"], "--output zz_*"),
    ("sort_unknown", ["--sort", "colour"], "--sort colour"),
    ("rule_unknown", ["--rule", "R00000000"], "--rule R00000000"),
    ("xlsx_not_xlsx", ["--xlsx", "{w}/review.csv"], "--xlsx"),
    ("xlsx_a_folder", ["--xlsx", "{w}/table"], "is a folder"),
    ("width_too_narrow", ["--width", "10"], "--width"),
):
    case(f"rules-show/{_name}", ["rules", "show", "{w}/table", *_argv], {"table": rule_dir()}, (_fragment,))
for _name, _precision, _fragment in (
    ("precision_text", "fine", "field precision"),
    ("precision_outputs_list", {"outputs": [1]}, "precision.outputs"),
    ("precision_step_zero", {"support": {"step": 0}}, "precision.support"),
    ("precision_digits_text", {"features": {"x": {"significant_digits": "2"}}}, "precision.features.x"),
):
    case(
        f"rules-show/{_name}",
        ["rules", "show", "{w}/table"],
        {"table": rule_dir(_edit_manifest(precision=_precision))},
        (_fragment,),
    )
case(
    "rules-verify/precision_not_kept",
    ["rules", "verify", "{w}/table"],
    {"table": rule_dir(_edit_manifest(precision={"support": {"step": 0.25}}))},
    ("rules.json", "support 0.3", "field precision"),
)
#: Anchors that pass the manifest's shape check but cannot act: refused when the table first acts.
BAD_ANCHORS = {
    "unknown_rule": ({"policy": "nosuch", "params": {}, "spec": "nosuch"}, "nosuch: unknown policy"),
    "bad_parameter": ({"policy": "priority", "params": {"cover": "lots"}}, "cover=lots"),
    "unknown_parameter": ({"policy": "priority", "params": {"bogus": "1"}}, "bogus"),
    "not_a_level_rule": ({"policy": "fixed", "params": {"quantity": "1"}}, "order-up-to levels"),
    "too_many_levels": ({"policy": "base_stock", "params": {"cover": "1,2,3,4"}}, "cover"),
}
for _name, (_anchor, _fragment) in BAD_ANCHORS.items():
    case(
        f"rules-simulate/anchor_{_name}",
        ["simulate", "--scenario", "tiny", "--policy", "rules:{w}/table"],
        {"table": rule_dir(_edit_manifest(anchor=_anchor), anchored=True)},
        ("rules:", "manifest field anchor", _fragment),
    )
case(
    "rules-simulate/anchored_other_scenario",
    ["simulate", "--scenario", "retail", "--policy", "rules:{w}/table"],
    {"table": rule_dir(anchored=True)},
    ("rules:",),
)
case(
    "rules-simulate/other_scenario",
    ["simulate", "--scenario", "retail", "--policy", "rules:{w}/table"],
    {"table": rule_dir()},
    ("rules:",),
)
case(
    "rules-compare/other_scenario",
    ["compare", "--scenario", "retail", "--policy", "base_stock", "--policy", "rules:{w}/table", "--out", "{w}/out"],
    {"table": rule_dir()},
    ("rules:",),
)
case(
    "rules-decide/csv_broken",
    ["rules", "decide", "{w}/table", "--input", "{w}/states.csv", "--format", "csv"],
    {"table": RULE_DIRS["rules_csv_text_number"][0], "states.csv": _states_placeholder},
    ("rules.csv",),
)
case(
    "rules-decide/dmn_broken",
    ["rules", "decide", "{w}/table", "--input", "{w}/states.csv", "--format", "dmn"],
    {"table": RULE_DIRS["rules_dmn_garbage"][0], "states.csv": _states_placeholder},
    ("rules.dmn",),
)
case(
    "rules-diff/other_scenario",
    ["rules", "diff", "{w}/good", "{w}/table"],
    {"good": rule_dir(), "table": rule_dir(_edit_manifest(**{"scenario|name": "retail"}))},
    ("manifest.json", "scenario", "--across-scenarios"),
)
case(
    "rules-diff/other_scenario_version",
    ["rules", "diff", "{w}/good", "{w}/table"],
    {"good": rule_dir(), "table": rule_dir(_edit_manifest(**{"scenario|digest": "0" * 64}))},
    ("manifest.json", "scenario", "digests differ"),
)
case(
    "rules-diff/one_bad",
    ["rules", "diff", "{w}/good", "{w}/table"],
    {"good": rule_dir(), "table": RULE_DIRS["manifest_review_text"][0]},
    ("manifest.json",),
)
case(
    "rules-approve/deep_manifest",
    [
        "rules",
        "approve",
        "{w}/table",
        "--reviewer",
        "me",
        "--comment",
        "ok",
        "--tracking-uri",
        "sqlite:///{w}/mlflow.db",
    ],
    {"table": RULE_DIRS["manifest_deep_nesting"][0]},
    ("manifest.json",),
)
case(
    "rules-approve/unknown_status",
    [
        "rules",
        "approve",
        "{w}/table",
        "--reviewer",
        "me",
        "--comment",
        "ok",
        "--status",
        "blessed",
        "--tracking-uri",
        "sqlite:///{w}/mlflow.db",
    ],
    {"table": rule_dir()},
    ("blessed",),
)
case(
    "rules-approve/garbage_store",
    ["rules", "approve", "{w}/table", "--reviewer", "me", "--comment", "ok", "--tracking-uri", "sqlite:///{w}/g.db"],
    {"table": rule_dir(), "g.db": b"garbage" * 50},
    ("g.db",),
)
case(
    "rules-approve/unsupported_store",
    ["rules", "approve", "{w}/table", "--reviewer", "me", "--comment", "ok", "--tracking-uri", "gopher://x"],
    {"table": rule_dir()},
    ("gopher://x",),
)
case(
    "rules-show/subprocess_deep_manifest",
    ["rules", "show", "{w}/table"],
    {"table": RULE_DIRS["manifest_deep_nesting"][0]},
    ("manifest.json",),
    subprocess=True,
)


def _states(rows: list[list[Any]] | None = None, header: list[str] | None = None) -> Callable[[Path], None]:
    """A states CSV with the tiny feature columns (values 5.0) and the given rows overriding."""

    def build(path: Path) -> None:
        from invalloc.config.loader import load_scenario
        from invalloc.env.features import FeatureSet
        from invalloc.sim.network import compile_network

        names = header or FeatureSet(compile_network(load_scenario("tiny"))).names
        body = rows if rows is not None else [[5.0] * len(names)]
        path.write_text(",".join(names) + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in body))

    return build


def _states_with(first: Any) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        from invalloc.config.loader import load_scenario
        from invalloc.env.features import FeatureSet
        from invalloc.sim.network import compile_network

        names = FeatureSet(compile_network(load_scenario("tiny"))).names
        row = [first] + [5.0] * (len(names) - 1)
        path.write_text(",".join(names) + "\n" + ",".join(str(v) for v in row) + "\n")

    return build


STATES: dict[str, tuple[Any, str]] = {
    "inf_feature": (_states_with("inf"), "states.csv"),
    "minus_inf_feature": (_states_with("-inf"), "states.csv"),
    "nan_feature": (_states_with("nan"), "states.csv"),
    "empty_feature": (_states_with(""), "states.csv"),
    "text_feature": (_states_with("warm"), "states.csv"),
    "huge_feature": (_states_with("1e400"), "states.csv"),
    "missing_column": (_states(header=["a", "b"], rows=[[1, 2]]), "states.csv"),
    "only_header": (_states(rows=[]), "states.csv"),
    "empty_file": ("", "states.csv"),
    "binary": (bytes(range(256)) * 4, "states.csv"),
}
for _name, (_content, _fragment) in STATES.items():
    case(
        f"states/{_name}",
        ["rules", "decide", "{w}/table", "--input", "{w}/states.csv"],
        {"table": rule_dir(), "states.csv": _content},
        (_fragment,),
    )
case(
    "states/missing_file",
    ["rules", "decide", "{w}/table", "--input", "{w}/none.csv"],
    {"table": rule_dir()},
    ("none.csv",),
)
case(
    "states/directory",
    ["rules", "decide", "{w}/table", "--input", "{w}/sdir"],
    {"table": rule_dir(), "sdir/x": "1"},
    ("sdir",),
)
case(
    "states/output_dir",
    ["rules", "decide", "{w}/table", "--input", "{w}/states.csv", "--output", "{w}/odir"],
    {"table": rule_dir(), "states.csv": _states(), "odir/x": "1"},
    ("odir",),
)
case(
    "states/output_missing_folder",
    ["rules", "decide", "{w}/table", "--input", "{w}/states.csv", "--output", "{w}/no/out.csv"],
    {"table": rule_dir(), "states.csv": _states()},
    ("out.csv",),
)
case(
    "states/format_unknown",
    ["rules", "decide", "{w}/table", "--input", "{w}/states.csv", "--format", "xml"],
    {"table": rule_dir(), "states.csv": _states()},
    ("xml",),
)
case(
    "states/output_with_bad_input",
    ["rules", "decide", "{w}/table", "--input", "{w}/states.csv", "--output", "{w}/out.csv"],
    {"table": rule_dir(), "states.csv": _states_with("inf")},
    ("states.csv",),
)
case(
    "states/subprocess_inf",
    ["rules", "decide", "{w}/table", "--input", "{w}/states.csv"],
    {"table": rule_dir(), "states.csv": _states_with("inf")},
    ("states.csv",),
    subprocess=True,
)


# ---------------------------------------------------------------------------------------------
# 8b. A rule table as an MLflow model: its predict input, its files, registered tables by URI
# ---------------------------------------------------------------------------------------------


def _predict(states: str = "states.csv") -> Callable[[Path], Any]:
    """What the pyfunc model's predict runs (invalloc.rules.pyfunc.decide_frame) on a states CSV."""

    def call(work: Path) -> Any:
        import pandas as pd

        from invalloc.rules.manifest import load_rule_table
        from invalloc.rules.pyfunc import decide_frame

        table, _ = load_rule_table(work / "table")
        return decide_frame(table, pd.read_csv(work / states), states)

    return call


def _model_call(function: str, *args: str) -> Callable[[Path], Any]:
    """A call of ``invalloc.rules.pyfunc.FUNCTION`` / ``invalloc.rules.registry.FUNCTION``; ``{w}``
    in an argument is the work folder."""

    def call(work: Path) -> Any:
        import importlib

        module = "invalloc.rules.registry" if function.startswith("load_registered") else "invalloc.rules.pyfunc"
        target = getattr(importlib.import_module(module), function)
        return target(
            *(Path(a.replace("{w}", str(work))) if a.startswith("{w}/") else a.replace("{w}", str(work)) for a in args)
        )

    return call


def _mlmodel(path: str) -> dict:
    """An MLmodel whose rule table artifact lies at ``path``."""
    return {"flavors": {"python_function": {"artifacts": {"rule_table": {"path": path}}}}}


for _name in ("inf_feature", "minus_inf_feature", "nan_feature", "empty_feature", "text_feature", "huge_feature",
              "missing_column", "only_header"):  # fmt: skip
    case(f"rules-model/predict_{_name}", api=_predict(), files={"table": rule_dir(), "states.csv": STATES[_name][0]},
         expect=("states.csv",))  # fmt: skip
RULE_MODEL_CASES: dict[str, tuple[Callable[[Path], Any], dict, tuple[str, ...]]] = {
    "artifact_escapes": (_model_call("table_directory", "{w}/m"), {"m/MLmodel": _mlmodel("../../etc")}, ("leaves",)),
    "artifact_absolute": (_model_call("table_directory", "{w}/m"), {"m/MLmodel": _mlmodel("/etc")}, ("leaves",)),
    "no_rule_table_artifact": (
        _model_call("table_directory", "{w}/m"),
        {"m/MLmodel": {"flavors": {"python_function": {}}}},
        ("m", "rule_table"),
    ),
    "neither_model_nor_table": (_model_call("table_directory", "{w}/m"), {"m/x.txt": "1"}, ("m", "neither")),
    "table_tampered": (
        _model_call("load_model_table", "{w}/table", "0" * 64),
        {"table": rule_dir(_write("rules.csv", "rule_id\n"), rehash=False)},
        ("rules.csv", "sha256"),
    ),
    "other_content_than_logged": (
        _model_call("load_model_table", "{w}/table", "0" * 64),
        {"table": rule_dir()},
        ("manifest.json", "recorded when it was logged"),
    ),
    "no_content_recorded": (_model_call("load_model_table", "{w}/table", ""), {"table": rule_dir()}, ("table",)),
    "registered_missing_store": (
        _model_call("load_registered_table", "models:/invalloc-rules-tiny@champion", "sqlite:///{w}/mlflow.db"),
        {},
        ("mlflow.db",),
    ),
    "registered_bad_scheme": (
        _model_call("load_registered_policy", "models:/invalloc-rules-tiny@champion", "gopher://x"),
        {},
        ("gopher://x",),
    ),
}
for _name, (_call, _files, _fragments) in RULE_MODEL_CASES.items():
    case(f"rules-model/{_name}", api=_call, files=_files, expect=_fragments)
case(
    "rules-model/simulate_champion_missing_store",
    ["simulate", "--scenario", "tiny", "--policy", "models:/invalloc-rules-tiny@champion", "--tracking-uri",
     "sqlite:///{w}/mlflow.db"],
    {},
    ("mlflow.db",),
)  # fmt: skip
case(
    "rules-model/compare_champion_missing_store",
    ["compare", "--scenario", "tiny", "--policy", "base_stock", "--policy", "models:/invalloc-rules-tiny@champion",
     "--out", "{w}/out", "--tracking-uri", "sqlite:///{w}/mlflow.db"],
    {},
    ("mlflow.db",),
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 9. The environment's Python API: constructor arguments and step/reset misuse
# ---------------------------------------------------------------------------------------------


def _env(**kwargs: Any) -> Callable[[Path], Any]:
    def call(work: Path) -> Any:
        from invalloc.env import AllocationEnv

        return AllocationEnv(**{"scenario": "tiny", **kwargs})

    return call


def _gym_make(**kwargs: Any) -> Callable[[Path], Any]:
    def call(work: Path) -> Any:
        import gymnasium as gym

        import invalloc  # noqa: F401 - registers the env

        return gym.make("invalloc/Allocation-v0", **{"scenario": "tiny", **kwargs})

    return call


def _after_reset(
    action: Any = None, reset_kwargs: dict | None = None, step: bool = True, **kwargs: Any
) -> Callable[[Path], Any]:
    def call(work: Path) -> Any:
        from invalloc.env import AllocationEnv

        env = AllocationEnv(scenario="tiny", **kwargs)
        env.reset(**(reset_kwargs or {}))
        if step:
            value = action(env) if callable(action) else action
            env.step(value)

    return call


def _step_before_reset(work: Path) -> None:
    import numpy as np

    from invalloc.env import AllocationEnv

    env = AllocationEnv(scenario="tiny")
    env.step(np.zeros(env.action_space.shape))


ENV_CASES: dict[str, tuple[Callable[[Path], Any], str]] = {
    "config_overrides_text": (_env(config_overrides="x"), "config_overrides"),
    "config_overrides_number": (_env(config_overrides=5), "config_overrides"),
    "config_overrides_list": (_env(config_overrides=[("episode", 1)]), "config_overrides"),
    "config_overrides_bad_value": (_env(config_overrides={"episode": {"horizon": -1}}), "episode.horizon"),
    "config_overrides_1e308": (_env(config_overrides={"finance": {"opening_cash": 1e308}}), "finance.opening_cash"),
    "reward_scale_nan": (_env(reward_scale=float("nan")), "reward_scale"),
    "reward_scale_negative": (_env(reward_scale=-1.0), "reward_scale"),
    "reward_scale_zero": (_env(reward_scale=0), "reward_scale"),
    "reward_scale_inf": (_env(reward_scale=float("inf")), "reward_scale"),
    "reward_scale_text": (_env(reward_scale="big"), "reward_scale"),
    "reward_scale_bool": (_env(reward_scale=True), "reward_scale"),
    "projection_penalty_nan": (_env(projection_penalty=float("nan")), "projection_penalty"),
    "projection_penalty_inf": (_env(projection_penalty=float("inf")), "projection_penalty"),
    "projection_penalty_negative": (_env(projection_penalty=-1), "projection_penalty"),
    "projection_penalty_text": (_env(projection_penalty="x"), "projection_penalty"),
    "periods_zero": (_env(periods=0), "periods"),
    "periods_negative": (_env(periods=-3), "periods"),
    "periods_half": (_env(periods=2.5), "periods"),
    "periods_1e9": (_env(periods=10**9), "periods"),
    "periods_1e25": (_env(periods=10**25), "periods"),
    "periods_text": (_env(periods="ten"), "periods"),
    "periods_bool": (_env(periods=True), "periods"),
    "action_mode_unknown": (_env(action_mode="fancy"), "action_mode"),
    "observation_unknown": (_env(observation="pixels"), "observation"),
    "render_mode_unknown": (_env(render_mode="human"), "render_mode"),
    "scenario_missing": (_env(scenario="no_such_scenario"), "no_such_scenario"),
    "scenario_number": (_env(scenario=5), "scenario"),
    "check_invariants_text": (_env(check_invariants="yes"), "check_invariants"),
    "gym_make_reward_scale_nan": (_gym_make(reward_scale=float("nan")), "reward_scale"),
    "gym_make_config_overrides_text": (_gym_make(config_overrides="x"), "config_overrides"),
    "step_before_reset": (_step_before_reset, "reset"),
    "step_complex_action": (_after_reset(lambda env: env.action_space.sample().astype(complex) + 1j), "action"),
    "step_text_action": (_after_reset("go"), "action"),
    "step_none_action": (_after_reset(None), "action"),
    "step_wrong_shape": (_after_reset(lambda env: [0.0] * (env.action_space.shape[0] + 1)), "action"),
    "step_nan_action": (_after_reset(lambda env: [float("nan")] * env.action_space.shape[0]), "action"),
    "step_object_action": (_after_reset(lambda env: [object()] * env.action_space.shape[0]), "action"),
    "reset_seed_true": (_after_reset(reset_kwargs={"seed": True}, step=False), "seed"),
    "reset_seed_negative": (_after_reset(reset_kwargs={"seed": -1}, step=False), "seed"),
    "reset_seed_text": (_after_reset(reset_kwargs={"seed": "abc"}, step=False), "seed"),
    "reset_seed_float": (_after_reset(reset_kwargs={"seed": 1.5}, step=False), "seed"),
    "reset_options_text": (_after_reset(reset_kwargs={"options": "x"}, step=False), "options"),
}
for _name, (_call, _fragment) in ENV_CASES.items():
    case(f"env/{_name}", api=_call, expect=(_fragment,))


# ---------------------------------------------------------------------------------------------
# 10. `--executor` and `--ray-address` (compare, tune, simulate): refused before Ray is imported
# ---------------------------------------------------------------------------------------------

_EXECUTOR_COMMANDS = {
    "compare": ["compare", "--scenario", "tiny", "--policy", "base_stock", "--policy", "s_S", "--out", "{w}/out"],
    "tune": ["tune", "--scenario", "tiny", "--seeds", "0-1", "--budget", "2", "--out", "{w}/t.yaml"],
    "simulate": ["simulate", "--scenario", "tiny", "--periods", "5"],
}
#: name → (options after the command, files (``@env``: environment), fragments of the error)
EXECUTORS: dict[str, tuple[list[str], dict, tuple[str, ...]]] = {
    "unknown": (["--executor", "dask"], {}, ("--executor dask", "local or ray")),
    "address_without_ray": (["--ray-address", "127.0.0.1:6379"], {}, ("--ray-address", "--executor ray")),
    "address_malformed": (
        ["--executor", "ray", "--ray-address", "headnode"],
        {},
        ("--ray-address headnode", "HOST:PORT"),
    ),
    "address_port_zero": (["--executor", "ray", "--ray-address", "head:0"], {}, ("--ray-address head:0", "HOST:PORT")),
    "address_client": (["--executor", "ray", "--ray-address", "ray://head:10001"], {}, ("ray://head:10001",)),
    "address_unreachable": (["--executor", "ray", "--ray-address", "127.0.0.1:1"], {}, ("--ray-address 127.0.0.1:1",)),
    "env_malformed": (["--executor", "ray"], {"@env": {"RAY_ADDRESS": "head:port"}}, ("RAY_ADDRESS head:port",)),
}
for _command, _base in _EXECUTOR_COMMANDS.items():
    for _name, (_options, _files, _expect) in EXECUTORS.items():
        case(f"executor/{_command}_{_name}", [*_base, *_options], _files, _expect)
case(
    "executor/subprocess_simulate_unreachable",
    [*_EXECUTOR_COMMANDS["simulate"], "--executor", "ray", "--ray-address", "127.0.0.1:1"],
    {},
    ("--ray-address 127.0.0.1:1", "no Ray cluster"),
    subprocess=True,
)


# ---------------------------------------------------------------------------------------------
# 11. A table in production: decision logs (`rules monitor`, `simulate --decision-log`) and
#     `rules challenge`
# ---------------------------------------------------------------------------------------------


def _tiny_names() -> tuple[list[str], list[str]]:
    """The feature and output names of the corpus table (compact, on `tiny`)."""
    from invalloc.env.actions import ActionMapper
    from invalloc.env.features import FeatureSet
    from invalloc.rules.table import action_outputs
    from invalloc.sim.network import compile_network
    from invalloc.sim.simulator import Simulator

    network = compile_network(load_scenario("tiny"))
    actions = ActionMapper(Simulator(network, check_invariants=False), "compact").names
    return FeatureSet(network).names, [o.name for o in action_outputs(actions, "compact")]


def _log(drop: tuple[str, ...] = (), rows: int = 4, suffix: str = "csv", **first: Any) -> Callable[[Path], None]:
    """A decision log for the corpus table (features 5.0, the table's outputs 1.0, a fill rate),
    without the columns ``drop``, the first row's cells ``first`` overriding (``kpi_x`` → ``kpi.x``)."""

    def build(path: Path) -> None:
        import pandas as pd

        features, outputs = _tiny_names()
        frame = pd.DataFrame({"episode": [0] * rows, "period": list(range(rows))})
        for name in features:
            frame[name] = 5.0
        for name in outputs:
            frame[name] = 1.0
        frame[outputs[0]] = 1.5  # rule 0 (first feature < 10) sets 1.5
        frame["kpi.fill_rate"] = 0.9
        frame = frame.astype(object)
        for key, value in first.items():
            frame.loc[0, key.replace("kpi_", "kpi.", 1)] = value
        frame = frame.drop(columns=list(drop))
        if suffix == "parquet":
            frame.astype(str).to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)

    return build


def _with_monitoring(**changes: Any) -> Callable[[Path], None]:
    """Add a valid `monitoring` block to the corpus table's manifest, then ``changes`` (``a|b`` paths)."""

    def edit(directory: Path) -> None:
        from invalloc.rules.manifest import load_rule_table

        table, _ = load_rule_table(directory)
        block = {
            "feature_ranges": {name: [0.0, 50.0] for name in table.feature_names},
            "states_seen": 100,
            "hit_rates": {rid: round(1 / len(table), 6) for rid in table.rule_ids},
            "periods": 100,
            "episodes": 5,
            "kpis": {"fill_rate": {"mean": 0.9, "std": 0.1}, "reward": {"mean": 100.0, "std": 10.0}},
        }
        _edit_manifest(monitoring=block)(directory)
        if changes:
            _edit_manifest(**changes)(directory)

    return edit


_TINY_FEATURE = "days_of_cover_dc_clearance"
_TINY_OUTPUT = "sku_cover_multiplier_widget"
LOG_CASES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "empty_file": ("", ("log.csv",)),
    "binary": (bytes(range(256)) * 4, ("log.csv",)),
    "only_header": (lambda path: path.write_text("episode,period\n"), ("log.csv",)),
    "missing_feature": (_log(drop=(_TINY_FEATURE,)), ("log.csv", _TINY_FEATURE)),
    "text_feature": (_log(**{_TINY_FEATURE: "warm"}), ("log.csv", _TINY_FEATURE, "row 1")),
    "empty_feature": (_log(**{_TINY_FEATURE: None}), ("log.csv", _TINY_FEATURE)),
    "inf_feature": (_log(**{_TINY_FEATURE: "inf"}), ("log.csv", _TINY_FEATURE)),
    "minus_inf_feature": (_log(**{_TINY_FEATURE: "-inf"}), ("log.csv", _TINY_FEATURE)),
    "huge_feature": (_log(**{_TINY_FEATURE: "1e400"}), ("log.csv", _TINY_FEATURE)),
    "nan_feature": (_log(**{_TINY_FEATURE: "nan"}), ("log.csv", _TINY_FEATURE)),
    "partial_outputs": (_log(drop=(_TINY_OUTPUT,)), ("log.csv", _TINY_OUTPUT)),
    "text_output": (_log(**{"dc_cover_multiplier_dc": "more"}), ("log.csv", "dc_cover_multiplier_dc")),
    "empty_output": (_log(**{"dc_cover_multiplier_dc": None}), ("log.csv", "dc_cover_multiplier_dc")),
}
for _name, (_content, _fragments) in LOG_CASES.items():
    case(
        f"rules-monitor/log_{_name}",
        ["rules", "monitor", "{w}/table", "--log", "{w}/log.csv"],
        {"table": rule_dir(), "log.csv": _content},
        _fragments,
    )
for _name, (_cells, _fragment) in {
    "kpi_text": ({"kpi_fill_rate": "high"}, "kpi.fill_rate"),
    "kpi_inf": ({"kpi_fill_rate": "inf"}, "kpi.fill_rate"),
    "kpi_empty": ({"kpi_fill_rate": None}, "kpi.fill_rate"),
}.items():
    case(
        f"rules-monitor/log_{_name}",
        ["rules", "monitor", "{w}/table", "--log", "{w}/log.csv"],
        {"table": rule_dir(_with_monitoring()), "log.csv": _log(**_cells)},
        ("log.csv", _fragment),
    )
MONITORING_BLOCKS: dict[str, tuple[dict[str, Any], str]] = {
    "not_object": ({"monitoring": "yes"}, "monitoring"),
    "ranges_number": ({"monitoring|feature_ranges": 3}, "monitoring.feature_ranges"),
    "ranges_missing_feature": ({"monitoring|feature_ranges": {"days_remaining": [0, 1]}}, "feature_ranges"),
    "range_reversed": ({f"monitoring|feature_ranges|{_TINY_FEATURE}": [5.0, 1.0]}, _TINY_FEATURE),
    "range_text": ({f"monitoring|feature_ranges|{_TINY_FEATURE}": ["a", "b"]}, _TINY_FEATURE),
    "range_one_value": ({f"monitoring|feature_ranges|{_TINY_FEATURE}": [1.0]}, _TINY_FEATURE),
    "hit_rates_other_rules": ({"monitoring|hit_rates": {"R00000000": 1.0}}, "monitoring.hit_rates"),
    "hit_rates_list": ({"monitoring|hit_rates": [1.0]}, "monitoring.hit_rates"),
    "kpis_text_mean": ({"monitoring|kpis|fill_rate": {"mean": "high", "std": 0.1}}, "monitoring.kpis"),
    "kpis_missing_std": ({"monitoring|kpis|reward": {"mean": 1.0}}, "monitoring.kpis"),
    "periods_zero": ({"monitoring|periods": 0}, "monitoring.periods"),
    "periods_text": ({"monitoring|periods": "many"}, "monitoring.periods"),
    "periods_bool": ({"monitoring|periods": True}, "monitoring.periods"),
}
for _name, (_changes, _fragment) in MONITORING_BLOCKS.items():
    case(
        f"rules-monitor/manifest_{_name}",
        ["rules", "monitor", "{w}/table", "--log", "{w}/log.csv"],
        {"table": rule_dir(_with_monitoring(**_changes)), "log.csv": _log()},
        ("manifest.json", _fragment),
    )
_MONITOR = ["rules", "monitor", "{w}/table", "--log", "{w}/log.csv"]
for _name, (_argv, _files, _fragments) in {
    "log_missing_file": (["rules", "monitor", "{w}/table", "--log", "{w}/none.csv"], {}, ("none.csv",)),
    "log_directory": (["rules", "monitor", "{w}/table", "--log", "{w}/ldir"], {"ldir/x": "1"}, ("ldir",)),
    "log_suffix": (["rules", "monitor", "{w}/table", "--log", "{w}/log.txt"], {"log.txt": _log()}, ("log.txt",)),
    "log_parquet_garbage": (
        ["rules", "monitor", "{w}/table", "--log", "{w}/log.parquet"],
        {"log.parquet": b"PAR1" + bytes(range(256)) + b"PAR1"},
        ("log.parquet",),
    ),
    "log_parquet_text_feature": (
        ["rules", "monitor", "{w}/table", "--log", "{w}/log.parquet"],
        {"log.parquet": _log(suffix="parquet", **{_TINY_FEATURE: "warm"})},
        ("log.parquet", _TINY_FEATURE),
    ),
    "max_psi_negative": ([*_MONITOR, "--max-psi", "-1"], {"log.csv": _log()}, ("--max-psi",)),
    "max_psi_nan": ([*_MONITOR, "--max-psi", "nan"], {"log.csv": _log()}, ("--max-psi",)),
    "max_psi_text": ([*_MONITOR, "--max-psi", "high"], {"log.csv": _log()}, ("--max-psi",)),
    "max_kpi_drift_inf": ([*_MONITOR, "--max-kpi-drift", "inf"], {"log.csv": _log()}, ("--max-kpi-drift",)),
    "max_out_of_range_above_one": (
        [*_MONITOR, "--max-out-of-range", "1.5"],
        {"log.csv": _log()},
        ("--max-out-of-range",),
    ),
    "max_overrides_negative": ([*_MONITOR, "--max-overrides", "-0.1"], {"log.csv": _log()}, ("--max-overrides",)),
    "report_is_file": ([*_MONITOR, "--report", "{w}/rep.txt"], {"log.csv": _log(), "rep.txt": "x"}, ("rep.txt",)),
    "report_other_folder": ([*_MONITOR, "--report", "{w}/rdir"], {"log.csv": _log(), "rdir/x": "1"}, ("rdir",)),
    "report_with_bad_log": (
        [*_MONITOR, "--report", "{w}/rep"],
        {"log.csv": _log(**{_TINY_FEATURE: "x"})},
        ("log.csv",),
    ),
    "table_missing": (["rules", "monitor", "{w}/none", "--log", "{w}/log.csv"], {"log.csv": _log()}, ("none",)),
    "table_is_run": (["rules", "monitor", "run:abc", "--log", "{w}/log.csv"], {"log.csv": _log()}, ("run:abc",)),
    "model_without_store": (
        ["rules", "monitor", "models:/x@champion", "--log", "{w}/log.csv", "--tracking-uri", "sqlite:///{w}/no.db"],
        {"log.csv": _log()},
        ("no.db",),
    ),
}.items():
    case(f"rules-monitor/{_name}", _argv, {"table": rule_dir(), **_files}, _fragments)
case(
    "rules-monitor/table_tampered",
    _MONITOR,
    {"table": rule_dir(_write("rules.csv", "rule_id\nR1\n"), rehash=False), "log.csv": _log()},
    ("rules.csv",),
)
case(
    "rules-monitor/subprocess_text_feature",
    _MONITOR,
    {"table": rule_dir(), "log.csv": _log(**{_TINY_FEATURE: "warm"})},
    ("log.csv", _TINY_FEATURE),
    subprocess=True,
)

_SIMULATE_RULES = ["simulate", "--scenario", "tiny", "--policy", "rules:{w}/table", "--episodes", "1"]
for _name, (_argv, _files, _fragments) in {
    "baseline": (
        ["simulate", "--scenario", "tiny", "--policy", "base_stock", "--decision-log", "{w}/log.csv"],
        {},
        ("--decision-log", "base_stock"),
    ),
    "suffix": ([*_SIMULATE_RULES, "--decision-log", "{w}/log.txt"], {}, ("log.txt",)),
    "directory": ([*_SIMULATE_RULES, "--decision-log", "{w}/ddir"], {"ddir/x": "1"}, ("ddir",)),
    "parent_is_file": ([*_SIMULATE_RULES, "--decision-log", "{w}/f/log.csv"], {"f": "x"}, ("log.csv",)),
    "same_as_audit_log": (
        [*_SIMULATE_RULES, "--decision-log", "{w}/log.csv", "--audit-log", "{w}/log.csv"],
        {},
        ("--decision-log", "--audit-log"),
    ),
    "tampered_table": (
        [*_SIMULATE_RULES, "--decision-log", "{w}/log.csv"],
        {"table": rule_dir(_write("rules.dmn", "<x/>"), rehash=False)},
        ("rules.dmn",),
    ),
}.items():
    case(f"simulate-decision-log/{_name}", _argv, {"table": rule_dir(), **_files}, _fragments)


def _fake_registry(directory: Path) -> None:
    """Record a registered version in the manifest (and the audit log, re-signed): offline checks pass."""
    _edit_manifest(
        registry={"model_name": "invalloc-rules-tiny", "version": "1", "alias": "candidate", "export_run_id": "x"}
    )(directory)


_CHALLENGE = ["rules", "challenge", "--champion", "rules:{w}/a", "--challenger", "rules:{w}/b", "--episodes", "2"]
for _name, (_argv, _files, _fragments) in {
    "same_table": (
        ["rules", "challenge", "--champion", "rules:{w}/a", "--challenger", "rules:{w}/a"],
        {},
        ("--challenger", "champion"),
    ),
    "unregistered_challenger": (_CHALLENGE, {}, ("--challenger", "not registered")),
    "champion_missing": (
        ["rules", "challenge", "--champion", "rules:{w}/none", "--challenger", "rules:{w}/b"],
        {},
        ("none",),
    ),
    "champion_baseline": (
        ["rules", "challenge", "--champion", "base_stock", "--challenger", "rules:{w}/b"],
        {},
        ("--champion", "base_stock"),
    ),
    "challenger_run": (
        ["rules", "challenge", "--champion", "rules:{w}/a", "--challenger", "run:abc"],
        {},
        ("--challenger", "run:abc"),
    ),
    "challenger_bad_model_uri": (
        ["rules", "challenge", "--champion", "rules:{w}/a", "--challenger", "models:/x"],
        {},
        ("models:/x",),
    ),
    "challenger_tampered": (
        _CHALLENGE,
        {"b": rule_dir(_write("rules.json", "{}"), rehash=False)},
        ("rules.json",),
    ),
    "episodes_one": ([*_CHALLENGE[:-1], "1"], {}, ("--episodes",)),
    "episodes_text": ([*_CHALLENGE[:-1], "many"], {}, ("--episodes",)),
    "seed_negative": ([*_CHALLENGE, "--seed", "-1"], {}, ("--seed",)),
    "scenario_missing": (
        [*_CHALLENGE, "--scenario", "no_such_scenario"],
        {"b": rule_dir(_fake_registry)},
        ("no_such_scenario",),
    ),
    "unsupported_store": (
        [*_CHALLENGE, "--tracking-uri", "gopher://x"],
        {"b": rule_dir(_fake_registry)},
        ("gopher://x",),
    ),
    "demand_trace_missing": (
        [*_CHALLENGE, "--demand-trace", "{w}/recent.csv"],
        {"b": rule_dir(_fake_registry)},
        ("recent.csv",),
    ),
    "demand_trace_negative": (
        [*_CHALLENGE, "--demand-trace", "{w}/recent.csv"],
        {"b": rule_dir(_fake_registry), "recent.csv": _trace(_full_trace(quantity=-1))},
        ("recent.csv",),
    ),
}.items():
    case(f"rules-challenge/{_name}", _argv, {"a": rule_dir(), "b": rule_dir(), **_files}, _fragments)
