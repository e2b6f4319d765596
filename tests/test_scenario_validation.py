"""Scenario validation: every shipped scenario loads, and bad scenarios are rejected with
every problem listed under a clean YAML path.

The bad scenarios are built by mutating the ``tiny`` scenario's data, one contradiction each.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from invalloc.config.loader import (
    SCENARIO_DIR,
    ScenarioError,
    load_scenario,
    parse_scenario,
    yaml_path,
)

TINY = yaml.safe_load((SCENARIO_DIR / "tiny.yaml").read_text(encoding="utf-8"))
SHIPPED = sorted(SCENARIO_DIR.glob("*.yaml"))
#: Fragments of pydantic's union-member names that must never reach a user.
TYPE_NOISE = (
    "constrained-",
    "dict[",
    "list[",
    "tagged-union",
    "function-",
    "literal[",
    "[key]",
    "Input should",
)

Mutation = Callable[[dict[str, Any], Path], None]


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Mutation
    expected: str  # a substring of one problem line


def problems_of(data: Any, base_dir: Path) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "case.yaml", base_dir)
    problems = caught.value.problems
    for line in problems:
        assert "\n" not in line
        assert not any(noise in line for noise in TYPE_NOISE), line
    return problems


def tiny() -> dict[str, Any]:
    return copy.deepcopy(TINY)


# --- mutation helpers -----------------------------------------------------------------------


def setting(path: str, value: Any) -> Mutation:
    """Set ``a.b[0].c``-style path (mapping keys and list indices) to ``value``."""
    parts: list[Any] = []
    for piece in path.split("."):
        name, _, rest = piece.partition("[")
        parts.append(name)
        parts += [int(index) for index in rest.rstrip("]").split("][")] if rest else []

    def mutate(data: dict[str, Any], _: Path) -> None:
        node: Any = data
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value

    return mutate


def deleting(path: str) -> Mutation:
    *head, last = path.split(".")

    def mutate(data: dict[str, Any], tmp: Path) -> None:
        node: Any = data
        for part in head:
            name, _, index = part.partition("[")
            node = node[name]
            if index:
                node = node[int(index.rstrip("]"))]
        if isinstance(node, list):
            del node[int(last)]
        else:
            del node[last]

    return mutate


def appending(section: str, item: Any) -> Mutation:
    def mutate(data: dict[str, Any], _: Path) -> None:
        node: Any = data
        for part in section.split("."):
            node = node.setdefault(part, [] if part == section.split(".")[-1] else {})
        node.append(copy.deepcopy(item))

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(data: dict[str, Any], tmp: Path) -> None:
        for mutation in mutations:
            mutation(data, tmp)

    return mutate


def with_trace(text: str) -> Mutation:
    def mutate(data: dict[str, Any], tmp: Path) -> None:
        (tmp / "trace.csv").write_text(text, encoding="utf-8")
        data["demand"] = {"trace": "trace.csv"}

    return mutate


SECOND_DC = {"id": "dc2", "opening_stock": 0}

CASES = [
    # unknown keys, at several depths
    Case("unknown top-level key", setting("colour", "red"), "colour: unknown key"),
    Case(
        "unknown product key",
        setting("products[0].unit_cst", 4),
        "products[0].unit_cst: unknown key; did you mean 'unit_cost'?",
    ),
    Case(
        "unknown tier key",
        setting("channels[0].tiers[1].priorty", 1),
        "channels[0].tiers[1].priorty: unknown key; did you mean 'priority'?",
    ),
    Case(
        "unknown lead-time key",
        setting("lanes[0].lead_time.hgh", 2),
        "lanes[0].lead_time.hgh: unknown key; did you mean 'high'?",
    ),
    Case(
        "unknown finance key",
        setting("finance.overdraft", 1),
        "finance.overdraft: unknown key (allowed here:",
    ),
    Case(
        "unknown reserve key",
        setting("rules.reserve_stock[0].qty", 1),
        "rules.reserve_stock[0].qty: unknown key",
    ),
    # types and ranges
    Case(
        "wrong type: horizon",
        setting("episode.horizon", "long"),
        'episode.horizon: must be a whole number (got "long")',
    ),
    Case("wrong type: section", setting("products", {"id": "x"}), "products: must be a list (got a mapping)"),
    Case(
        "wrong type: number or mapping",
        setting("products[0].price", "cheap"),
        "products[0].price: must be a number or a mapping",
    ),
    Case(
        "fractional priority",
        setting("channels[0].tiers[0].priority", 0.5),
        "channels[0].tiers[0].priority: must be a whole number",
    ),
    Case(
        "negative unit cost",
        setting("products[0].unit_cost", -1),
        "products[0].unit_cost: must be greater than or equal to 0 (got -1)",
    ),
    Case(
        "negative price",
        setting("products[0].price", -10),
        "products[0].price: must be greater than or equal to 0 (got -10)",
    ),
    Case(
        "negative channel price",
        setting("products[1].price.online", -2),
        "products[1].price.online: must be greater than or equal to 0",
    ),
    Case(
        "negative opening stock",
        setting("locations[0].opening_stock.widget", -5),
        "locations[0].opening_stock.widget: must be greater than or equal to 0",
    ),
    Case(
        "share above 1",
        setting("rules.max_channel_share", 1.5),
        "rules.max_channel_share: must be less than or equal to 1",
    ),
    Case("zero discount", setting("episode.discount", 0), "episode.discount: must be greater than 0"),
    Case("empty list", setting("products", []), "products: must have at least 1 item"),
    Case(
        "seasonality amplitude above 1",
        setting("demand.streams[0].seasonality", {"amplitude": 2, "period": 52}),
        "demand.streams[0].seasonality.amplitude: must be less than or equal to 1",
    ),
    Case("invalid id", setting("products[0].id", "wid get"), 'products[0].id: "wid get" is not a valid id'),
    Case(
        "invalid mapping key",
        setting("locations[0].opening_stock", {"wid get": 1}),
        'locations[0].opening_stock["wid get"]: "wid get" is not a valid key',
    ),
    Case(
        "unknown enum value",
        setting("finance.cost_method", "lifo"),
        "finance.cost_method: must be 'fifo' or 'weighted_average' (got \"lifo\")",
    ),
    Case(
        "infinite number",
        setting("finance.opening_cash", float("inf")),
        "finance.opening_cash: must be a finite number (got inf)",
    ),
    Case(
        "not a number",
        setting("products[0].unit_cost", float("nan")),
        "products[0].unit_cost: must be a finite number",
    ),
    Case("numeric id", setting("channels[0].id", 7), 'channels[0].id: must be a string (got 7); quote it: "7"'),
    # missing keys
    Case("missing horizon", deleting("episode.horizon"), "episode.horizon: required key is missing"),
    Case("missing section", deleting("products"), "products: required key is missing"),
    Case("missing lane end", deleting("lanes[1].to"), "lanes[1].to: required key is missing"),
    Case(
        "missing tier share",
        deleting("channels[1].tiers[0].demand_share"),
        "channels[1].tiers[0].demand_share: required key is missing",
    ),
    # ids
    Case(
        "duplicate product id",
        setting("products[1].id", "widget"),
        "products[1].id: 'widget' is already the id of products[0]",
    ),
    Case(
        "id shared by supplier and channel",
        setting("channels[1].id", "maker"),
        "channels[1].id: 'maker' is also the id of suppliers[0]",
    ),
    Case(
        "duplicate tier id",
        setting("channels[0].tiers[1].id", "key"),
        "channels[0].tiers[1].id: tier 'key' is already channels[0].tiers[0]",
    ),
    Case(
        "shares not summing to 1",
        setting("channels[0].tiers[0].demand_share", 0.5),
        "channels[0].tiers: demand_share sums to 1.1, not 1",
    ),
    # products and prices
    Case(
        "price for unknown channel",
        setting("products[1].price.outlet", 5),
        "products[1].price.outlet: no such channel",
    ),
    Case(
        "price missing for a channel",
        deleting("products[1].price.online"),
        "products[1].price: no price for channel 'online'",
    ),
    Case(
        "NRV above every price",
        setting("products[1].net_realisable_value", 30),
        "products[1].net_realisable_value: 30 is above the highest price",
    ),
    Case(
        "product nobody supplies",
        deleting("suppliers[0].items.gadget"),
        "products[1]: no supplier offers 'gadget'",
    ),
    # locations and suppliers
    Case(
        "opening stock above capacity",
        setting("locations[0].capacity", 50),
        "locations[0].opening_stock: 92 units exceed the capacity of 50",
    ),
    Case(
        "opening stock of unknown product",
        setting("locations[0].opening_stock.gizmo", 1),
        "locations[0].opening_stock.gizmo: no such product",
    ),
    Case(
        "fractional opening stock",
        setting("locations[0].opening_stock.widget", 2.5),
        "locations[0].opening_stock.widget: 2.5 is not a whole number",
    ),
    Case(
        "supplier item of unknown product",
        setting("suppliers[0].items.gizmo", {"unit_cost": 1}),
        "suppliers[0].items.gizmo: no such product",
    ),
    Case(
        "supplier capacity below MOQ",
        setting("suppliers[0].items.gadget.capacity_per_period", 2),
        "suppliers[0].items.gadget.capacity_per_period: 2 is below the minimum_order_quantity 5",
    ),
    Case(
        "MOQ above lane capacity",
        setting("lanes[0].capacity_per_period", 4),
        "suppliers[0].items.gadget.minimum_order_quantity: 5 is above the capacity of every lane",
    ),
    Case(
        "supplier without lanes",
        appending("suppliers", {"id": "idle", "items": {"widget": {"unit_cost": 4}}}),
        "suppliers[1]: no lane leaves supplier 'idle'",
    ),
    # lanes
    Case(
        "lane to missing node",
        setting("lanes[1].to", "nowhere"),
        "lanes[1].to: no location or channel 'nowhere'",
    ),
    Case(
        "lane from missing node",
        setting("lanes[0].from", "nobody"),
        "lanes[0].from: no supplier or location 'nobody'",
    ),
    Case(
        "lane from a channel",
        appending("lanes", {"from": "stores", "to": "dc"}),
        "lanes[3].from: a lane cannot start at channel 'stores'",
    ),
    Case(
        "lane to a supplier",
        appending("lanes", {"from": "dc", "to": "maker"}),
        "lanes[3].to: a lane cannot end at supplier 'maker'",
    ),
    Case(
        "supplier straight to channel",
        appending("lanes", {"from": "maker", "to": "online"}),
        "lanes[3].to: suppliers ship to locations, not straight to channel 'online'",
    ),
    Case(
        "lane to itself",
        appending("lanes", {"from": "dc", "to": "dc"}),
        "lanes[3]: a lane from 'dc' to itself",
    ),
    Case(
        "duplicate lane",
        appending("lanes", {"from": "dc", "to": "stores", "lead_time": 1}),
        "lanes[3]: duplicate of lanes[1]",
    ),
    Case(
        "zero-capacity lane",
        setting("lanes[2].capacity_per_period", 0),
        "lanes[2].capacity_per_period: 0 means nothing can ever move",
    ),
    Case(
        "shortfall penalty on a sales lane",
        setting("lanes[1].shortfall_penalty_per_unit", 0.1),
        "lanes[1].shortfall_penalty_per_unit: applies to replenishment lanes only",
    ),
    Case(
        "channel with no serving lane",
        deleting("lanes.2"),
        "channels[1]: no lane from a location serves channel 'online'",
    ),
    Case(
        "location nothing supplies",
        both(appending("locations", SECOND_DC), appending("lanes", {"from": "dc2", "to": "online"})),
        "locations[1]: no lane supplies location 'dc2'",
    ),
    Case(
        "location unreachable from suppliers",
        both(
            appending("locations", SECOND_DC),
            appending("locations", {"id": "dc3"}),
            appending("lanes", {"from": "dc2", "to": "dc3"}),
            appending("lanes", {"from": "dc3", "to": "dc2"}),
        ),
        "locations[1]: no chain of lanes from a supplier reaches location 'dc2'",
    ),
    # lead times
    Case(
        "uniform low above high",
        setting("lanes[0].lead_time", {"kind": "uniform", "low": 3, "high": 1}),
        "lanes[0].lead_time.low: 3 is above high 1",
    ),
    Case(
        "negative lead time",
        setting("lanes[0].lead_time", {"kind": "uniform", "low": -1, "high": 1}),
        "lanes[0].lead_time.low: must be greater than or equal to 0",
    ),
    Case(
        "lead-time probabilities not summing to 1",
        setting("lanes[0].lead_time", {"kind": "discrete", "values": [1, 2], "probabilities": [0.5, 0.4]}),
        "lanes[0].lead_time.probabilities: sum to 0.9, not 1",
    ),
    Case(
        "lead-time values and probabilities differ",
        setting("lanes[0].lead_time", {"kind": "discrete", "values": [1, 2, 3], "probabilities": [0.5, 0.5]}),
        "lanes[0].lead_time.probabilities: 2 probabilities for 3 values",
    ),
    Case(
        "unknown lead-time kind",
        setting("lanes[0].lead_time", {"kind": "gamma", "shape": 2}),
        "lanes[0].lead_time.kind: must be one of 'fixed', 'uniform', 'discrete' (got \"gamma\")",
    ),
    Case(
        "lead-time mapping without kind",
        setting("lanes[0].lead_time", {"low": 1, "high": 2}),
        "lanes[0].lead_time: a mapping here needs a 'kind' key",
    ),
    Case(
        "fractional lead time",
        setting("lanes[1].lead_time", 1.5),
        "lanes[1].lead_time: must be a whole number or a mapping (got 1.5)",
    ),
    # demand
    Case(
        "unknown distribution",
        setting("demand.streams[0].distribution", "gamma"),
        "demand.streams[0].distribution: must be 'poisson', 'normal' or 'negative_binomial' (got \"gamma\")",
    ),
    Case(
        "normal without std",
        setting("demand.streams[0].distribution", "normal"),
        "demand.streams[0].std: required for the normal distribution",
    ),
    Case(
        "negative binomial with variance <= mean",
        both(
            setting("demand.streams[0].distribution", "negative_binomial"),
            setting("demand.streams[0].std", 2),
        ),
        "demand.streams[0].std: negative binomial needs variance above the mean",
    ),
    Case(
        "poisson with std",
        setting("demand.streams[1].std", 3),
        "demand.streams[1].std: a poisson stream has std = √mean",
    ),
    Case(
        "stream for unknown channel",
        setting("demand.streams[0].channel", "outlet"),
        "demand.streams[0].channel: no such channel 'outlet'",
    ),
    Case(
        "stream for unknown product",
        setting("demand.streams[0].skus", ["widget", "gizmo"]),
        "demand.streams[0].skus: no such product 'gizmo'",
    ),
    Case(
        "stream mean missing a product",
        setting("demand.streams[1].mean", {"widget": 5}),
        "demand.streams[1].mean: no value for 'gadget'",
    ),
    Case(
        "mean for a product outside the stream",
        setting("demand.streams[0].skus", ["widget"]),
        "demand.streams[0].mean.gadget: 'gadget' is not among this stream's skus",
    ),
    Case(
        "trend wiping out demand",
        setting("demand.streams[0].trend", -1.5),
        "demand.streams[0].trend: -1.5 would take the mean to zero or below",
    ),
    Case("no demand at all", setting("demand", {}), "demand: give streams, a trace or a bootstrap"),
    Case("trace file missing", setting("demand.trace", "nope.csv"), "demand.trace: file 'nope.csv' not found"),
    Case(
        "trace without a column",
        with_trace("period,channel,quantity\n0,stores,3\n"),
        "demand.trace: 'trace.csv' lacks the column(s) sku",
    ),
    Case(
        "trace shorter than the horizon",
        with_trace("period,channel,sku,quantity\n0,stores,widget,3\n4,online,gadget,1\n"),
        "demand.trace: 'trace.csv' covers periods 0–4 but the horizon is 20 periods",
    ),
    Case(
        "trace with bad rows",
        with_trace("period,channel,sku,quantity\n0,stores,widget,3\n1,outlet,widget,-2\n"),
        "demand.trace: row 2 (line 3): no such channel 'outlet'",
    ),
    # rules and finance
    Case(
        "max share for unknown channel",
        setting("rules.max_channel_share", {"outlet": 0.5}),
        "rules.max_channel_share.outlet: no such channel",
    ),
    Case(
        "zero share but a fill-rate contract",
        setting("rules.max_channel_share", {"stores": 0, "online": 1}),
        "rules.max_channel_share.stores: channel 'stores' may receive no stock",
    ),
    Case(
        "reserve for missing tier",
        setting("rules.reserve_stock[0].tiers", ["gold"]),
        "rules.reserve_stock[0].tiers: no such tier 'gold'",
    ),
    Case(
        "reserve at missing location",
        setting("rules.reserve_stock[0].location", "dc9"),
        "rules.reserve_stock[0].location: no such location 'dc9'",
    ),
    Case(
        "reserve of missing product",
        setting("rules.reserve_stock[0].skus", ["gizmo"]),
        "rules.reserve_stock[0].skus: no such product 'gizmo'",
    ),
    Case(
        "reserve exceeding DC capacity",
        setting("rules.reserve_stock[0].quantity", 2000),
        "rules.reserve_stock[0].quantity: reserves at 'dc' total 2000 units, above its capacity 1000",
    ),
    Case(
        "reserve where its tier is not served",
        both(
            appending("locations", SECOND_DC),
            appending("lanes", {"from": "maker", "to": "dc2"}),
            setting("rules.reserve_stock[0].location", "dc2"),
        ),
        "rules.reserve_stock[0].tiers: tier 'key' is in channel(s) stores, which 'dc2' has no lane to",
    ),
    Case(
        "treasury buffer above cash and credit",
        setting("finance.treasury_buffer", 5000),
        "finance.treasury_buffer: 5000 is above opening cash plus credit line (1000)",
    ),
    Case(
        "approval cap below cheapest order",
        setting("rules.purchase_approval", {"value_limit": 12, "action": "cap"}),
        "rules.purchase_approval.value_limit: 12 is below the cheapest possible order (14)",
    ),
    Case(
        "approval delay beyond horizon",
        setting("rules.purchase_approval", {"value_limit": 100, "action": "delay", "delay_periods": 20}),
        "rules.purchase_approval.delay_periods: 20 is not shorter than the horizon (20)",
    ),
    Case(
        "budget below cheapest order",
        setting("rules.purchase_budget_per_period", 2),
        "rules.purchase_budget_per_period: 2 is below the cheapest possible order (14)",
    ),
    # episode
    Case(
        "warmup as long as horizon",
        setting("episode.warmup", 20),
        "episode.warmup: 20 periods leave none of the horizon (20)",
    ),
]


def test_corpus_is_broad() -> None:
    assert len(CASES) >= 24
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_scenario_is_rejected(case: Case, tmp_path: Path) -> None:
    data = tiny()
    case.mutate(data, tmp_path)
    problems = problems_of(data, tmp_path)
    assert any(case.expected in line for line in problems), problems


def test_schema_problems_are_all_listed_together(tmp_path: Path) -> None:
    data = tiny()
    data["colour"] = "red"
    data["products"][0]["price"] = -1
    data["products"][1]["unit_cst"] = 3
    del data["episode"]["horizon"]
    data["lanes"][0]["lead_time"] = {"kind": "uniform", "low": -1, "high": 2}
    data["demand"]["streams"][0]["distribution"] = "gamma"
    problems = problems_of(data, tmp_path)
    expected = [
        "colour: unknown key (allowed here: channels, currency, demand, description, episode, finance, "
        "lanes, locations, name, products, rules, suppliers)",
        "products[0].price: must be greater than or equal to 0 (got -1)",
        "products[1].unit_cst: unknown key; did you mean 'unit_cost'?",
        "episode.horizon: required key is missing",
        "lanes[0].lead_time.low: must be greater than or equal to 0 (got -1)",
        "demand.streams[0].distribution: must be 'poisson', 'normal' or 'negative_binomial' (got \"gamma\")",
    ]
    assert sorted(problems) == sorted(expected)


def test_cross_field_problems_are_all_listed_together(tmp_path: Path) -> None:
    data = tiny()
    data["lanes"][1]["to"] = "nowhere"
    data["channels"][0]["tiers"][0]["demand_share"] = 0.5
    data["episode"]["warmup"] = 25
    data["finance"]["treasury_buffer"] = 5000
    data["rules"]["reserve_stock"][0]["tiers"] = ["gold"]
    data["products"][1]["price"]["outlet"] = 5
    problems = problems_of(data, tmp_path)
    for expected in [
        "lanes[1].to: no location or channel 'nowhere'",
        "channels[0]: no lane from a location serves channel 'stores'",
        "channels[0].tiers: demand_share sums to 1.1, not 1",
        "episode.warmup: 25 periods leave none of the horizon (20)",
        "finance.treasury_buffer: 5000 is above opening cash plus credit line",
        "rules.reserve_stock[0].tiers: no such tier 'gold'",
        "products[1].price.outlet: no such channel",
    ]:
        assert any(expected in line for line in problems), (expected, problems)


# --- file-level problems --------------------------------------------------------------------


def load_problems(path: Path | str, overrides: dict[str, Any] | None = None) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, overrides)
    return caught.value.problems


def test_missing_file(tmp_path: Path) -> None:
    problems = load_problems(tmp_path / "absent.yaml")
    assert problems == [problems[0]] and "no such scenario file" in problems[0]
    assert "tiny" in problems[0]  # lists the shipped scenarios


def test_unknown_scenario_name() -> None:
    problems = load_problems("no_such_scenario_name")
    assert "no such scenario file (shipped scenarios:" in problems[0]
    assert "retail" in problems[0]


def test_invalid_yaml_syntax(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nproducts: [a, b\nsuppliers: []\n", encoding="utf-8")
    (problem,) = load_problems(path)
    assert problem.startswith("line ") and "not valid YAML" in problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "(top level): expected a mapping of scenario sections"),
        ("just a string\n", "(top level): expected a mapping of scenario sections"),
        ("", "(top level): the scenario is empty"),
    ],
    ids=["list", "scalar", "empty"],
)
def test_top_level_not_a_mapping(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "top.yaml"
    path.write_text(text, encoding="utf-8")
    (problem,) = load_problems(path)
    assert expected in problem


def test_duplicate_yaml_key_is_reported_with_other_problems(tmp_path: Path) -> None:
    text = (SCENARIO_DIR / "tiny.yaml").read_text(encoding="utf-8")
    text = text.replace("  horizon: 20\n", "  horizon: 20\n  horizon: 30\n  warmup: 40\n")
    path = tmp_path / "dupe.yaml"
    path.write_text(text, encoding="utf-8")
    problems = load_problems(path)
    assert any("duplicate key 'horizon'" in line and line.startswith("line ") for line in problems), problems
    assert any("duplicate key 'warmup'" in line for line in problems), problems


def test_overrides_are_validated() -> None:
    problems = load_problems("tiny", {"episode": {"warmup": 50}, "finance": {"treasury_buffer": 1e6}})
    assert any(line.startswith("episode.warmup:") for line in problems)
    assert any(line.startswith("finance.treasury_buffer:") for line in problems)


@pytest.mark.parametrize(
    "overrides",
    [
        {"rules": {"cash_rule": False}},  # the treasury buffer is then simply not enforced
        {"rules": {"purchase_approval": {"action": "cap"}}},  # delay_periods is then unused
        {"rules": {"purchase_approval": None, "purchase_budget_per_period": None}},
        {"episode": {"horizon": 8, "warmup": 0}},
    ],
    ids=["no cash rule", "approval cap", "no purchase rules", "short horizon"],
)
def test_common_overrides_of_retail_load(overrides: dict[str, Any]) -> None:
    load_scenario("retail", overrides)


def test_trace_may_replace_streams(tmp_path: Path) -> None:
    data = tiny()
    rows = "".join(f"{t},stores,widget,3\n" for t in range(TINY["episode"]["horizon"]))
    (tmp_path / "trace.csv").write_text("period,channel,sku,quantity\n" + rows, encoding="utf-8")
    data["demand"]["trace"] = "trace.csv"
    parse_scenario(data, "case.yaml", tmp_path)


def test_error_lines_carry_the_source(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario("tiny", {"episode": {"warmup": 50}})
    assert all(line.startswith(str(SCENARIO_DIR / "tiny.yaml")) for line in caught.value.lines())


def test_yaml_path_rendering() -> None:
    assert yaml_path(("products", 0, "unit_cost")) == "products[0].unit_cost"
    assert yaml_path(("lanes", 2, "lead_time", "low")) == "lanes[2].lead_time.low"
    assert yaml_path(("price", "a b")) == 'price["a b"]'
    assert yaml_path(()) == "(top level)"


# --- shipped scenarios ----------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_loads_cleanly(path: Path) -> None:
    loaded = load_scenario(path)
    assert loaded.scenario.name == path.stem
    assert load_scenario(path.stem).digest == loaded.digest


def test_expected_scenarios_are_shipped() -> None:
    assert {"tiny", "retail", "newsvendor", "base_stock"} <= {p.stem for p in SHIPPED}


def test_tiny_exercises_rules() -> None:
    s = load_scenario("tiny").scenario
    assert (len(s.suppliers), len(s.locations), len(s.products), len(s.channels)) == (1, 1, 2, 2)
    assert s.rules.cash_rule and s.rules.reserve_stock
    assert s.finance.treasury_buffer < s.finance.opening_cash + s.finance.credit_line
    assert s.episode.horizon <= 20


def test_retail_shape() -> None:
    s = load_scenario("retail").scenario
    assert len(s.suppliers) == 2 and len(s.locations) == 3 and len(s.channels) == 3
    assert len(s.products) >= 20
    assert {st.distribution for st in s.demand.streams} == {"poisson", "normal", "negative_binomial"}
    assert any(p.shelf_life for p in s.products)
    assert any(p.net_realisable_value is not None and p.net_realisable_value < p.unit_cost for p in s.products)
    for channel in s.channels:
        assert 2 <= len(channel.tiers) <= 3
    assert (s.episode.period_days, s.episode.horizon) == (7, 52)
    rules = s.rules
    assert rules.max_channel_share and rules.reserve_stock and rules.purchase_approval
    assert rules.purchase_budget_per_period and rules.cash_rule
    # Prices cover costs in every channel and tier.
    for product in s.products:
        for channel in s.channels:
            price = product.price[channel.id] if isinstance(product.price, dict) else product.price
            assert price * min(t.price_multiplier for t in channel.tiers) > product.unit_cost


@pytest.mark.parametrize(("name", "lead_time", "opening"), [("newsvendor", 0, 57), ("base_stock", 4, 265)])
def test_analytic_cases_match_validation_md(name: str, lead_time: int, opening: float) -> None:
    s = load_scenario(name).scenario
    (product,) = s.products
    assert (product.id, product.unit_cost, product.price, product.holding_cost) == ("item", 0, 0, 0.18)
    assert product.integer_units is False
    (supply,) = [lane for lane in s.lanes if lane.source == s.suppliers[0].id]
    assert supply.lead_time == lead_time
    assert s.suppliers[0].items["item"].capacity_per_period is None
    ((tier,),) = [c.tiers for c in s.channels]
    assert tier.penalty_per_unit_short == 0.70
    (stream,) = s.demand.streams
    assert (stream.distribution, stream.mean, stream.std) == ("normal", 50, 8)
    assert s.locations[0].opening_stock == opening
    episode = s.episode
    assert (episode.unmet_demand, episode.discount, episode.reward_basis) == ("backlog", 1.0, "economic")
    assert not s.rules.cash_rule and episode.horizon >= 1000 and 0 < episode.warmup < 50


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_cli_reports_bad_scenario_in_lines_and_exits_2(case: Case, tmp_path: Path) -> None:
    """`invalloc scenario validate` prints one `error:` line per problem, no traceback, exit 2."""
    from typer.testing import CliRunner

    from invalloc.cli import app

    data = tiny()
    case.mutate(data, tmp_path)
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = CliRunner().invoke(app, ["scenario", "validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith("error: ") for line in lines)
    assert any(case.expected in line for line in lines), lines
    assert "Traceback" not in result.output
