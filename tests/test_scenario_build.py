"""`invalloc scenario build`: master-data tables + sales history → a validated scenario.

The shipped example company builds into a scenario that validates and simulates; a corpus of
broken tables is refused cleanly, each problem one ``error: file:row:column: …`` line, exit 2,
no traceback, nothing written.
"""

from __future__ import annotations

import csv
import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from invalloc.cli import app
from invalloc.config.loader import load_scenario
from invalloc.config.trace import read_trace
from invalloc.sim.kernels import COMPILE_NOTICE

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "history"
TABLES = ("products", "locations", "lanes", "channels", "suppliers", "stock")


def _build_argv(folder: Path, out: Path, *extra: str, rules: bool = True) -> list[str]:
    argv = ["scenario", "build"]
    for table in TABLES:
        argv += [f"--{table}", str(folder / f"{table}.csv")]
    if rules:
        argv += ["--rules", str(folder / "rules.yaml")]
    return argv + ["--history", str(folder / "sales.csv"), "--out", str(out), *extra]


def _invoke(argv: list[str]):
    result = CliRunner().invoke(app, argv)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


# ---------------------------------------------------------------------------------------------
# The example company
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The example company built with a 26-week hold-out (fit on the first 78 weeks)."""
    out = tmp_path_factory.mktemp("build") / "company.yaml"
    result = _invoke(_build_argv(EXAMPLE, out, "--holdout-periods", "26", "--fit-report", str(out.parent / "fit")))
    assert result.exit_code == 0, result.stderr
    assert "50 SKUs × 3 channels" in result.stdout and "holdout.csv" in result.stdout
    return out


def test_example_builds_a_valid_scenario_with_a_holdout_trace(built: Path):
    loaded = load_scenario(built)
    scenario = loaded.scenario
    assert scenario.name == "company" and scenario.currency == "EUR"
    assert len(scenario.products) == 50 and [c.id for c in scenario.channels] == ["stores", "online", "wholesale"]
    assert scenario.episode.horizon == 26 and scenario.episode.period_days == 7
    assert scenario.episode.unmet_demand == "lost_sales"  # from rules.yaml
    assert scenario.rules.max_channel_share == {"wholesale": 0.5}
    assert scenario.finance.treasury_buffer > 0
    contract = scenario.channels[2].tiers[0]
    assert (contract.id, contract.min_fill_rate, contract.demand_share) == ("contract", 0.95, 0.6)
    assert {d.distribution for d in scenario.demand.streams} >= {"poisson", "negative_binomial"}
    assert dict(scenario.locations[1].opening_stock)  # stock.csv
    # The hold-out trace is the last 26 weeks of sales, renumbered 0..25, every row present.
    skus = [p.id for p in scenario.products]
    channels = [c.id for c in scenario.channels]
    holdout, problems = read_trace(built.parent / "holdout.csv", channels, skus, 26)
    assert problems == []
    sales = np.zeros((104, 3, 50))
    with (EXAMPLE / "sales.csv").open() as handle:
        dates = []
        for row in csv.DictReader(handle):
            if row["date"] not in dates:
                dates.append(row["date"])
            sales[dates.index(row["date"]), channels.index(row["channel"]), skus.index(row["sku"])] = float(
                row["quantity"]
            )
    np.testing.assert_array_equal(holdout, sales[78:])
    with (built.parent / "holdout.csv").open() as handle:
        assert sum(1 for _ in handle) == 1 + 26 * 3 * 50


def test_the_fit_report_is_written_for_the_fitted_window(built: Path):
    report = json.loads((built.parent / "fit" / "fit_report.json").read_text(encoding="utf-8"))
    assert (report["first_period"], report["last_period"], report["periods"]) == ("2023-01-02", "2024-06-24", 78)
    assert len(report["series"]) == 150
    assert (built.parent / "fit" / "fit_report.html").is_file()


def test_built_scenario_validates_and_simulates_on_the_holdout(built: Path):
    result = _invoke(["scenario", "validate", str(built)])
    assert result.exit_code == 0 and "valid" in result.stdout
    result = _invoke(
        [
            "simulate",
            "--scenario",
            str(built),
            "--episodes",
            "1",
            "--periods",
            "4",
            "--demand-trace",
            str(built.parent / "holdout.csv"),
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert "fill_rate" in result.stdout


def test_bootstrap_build_validates(tmp_path: Path):
    out = tmp_path / "boot" / "company.yaml"
    result = _invoke(_build_argv(EXAMPLE, out, "--method", "bootstrap", "--horizon", "10", "--name", "boot"))
    assert result.exit_code == 0, result.stderr
    scenario = load_scenario(out).scenario
    assert scenario.name == "boot" and scenario.episode.horizon == 10
    assert scenario.demand.bootstrap is not None and (out.parent / scenario.demand.bootstrap.history).is_file()
    assert not (out.parent / "holdout.csv").exists()  # no hold-out asked for


def test_example_script_reproduces_the_shipped_files(tmp_path: Path):
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_example_history.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    # Written by hand, not by the script: the folder's README and the walk-through's script and experiment.
    hand_written = {"README.md", "walkthrough.sh", "company_ars.yaml"}
    shipped = sorted(p.name for p in EXAMPLE.iterdir() if p.name not in hand_written)
    assert sorted(p.name for p in tmp_path.iterdir()) == shipped
    match, mismatch, errors = filecmp.cmpfiles(EXAMPLE, tmp_path, shipped, shallow=False)
    assert (mismatch, errors) == ([], [])


# ---------------------------------------------------------------------------------------------
# Broken tables: a small good company, and one change per case
# ---------------------------------------------------------------------------------------------

GOOD = {
    "channels.csv": "channel,tier,priority,demand_share,min_fill_rate\nstores,,0,,\nonline,web,0,1,\n",
    "products.csv": "sku,description,unit_cost,price,price_online\nA,widget,4,10,\nB,gadget,10,20,22\n",
    "locations.csv": "location,capacity\ndc,1000\n",
    "suppliers.csv": "supplier,sku,unit_cost,minimum_order_quantity,fixed_order_cost\nmaker,A,4,,10\nmaker,B,10,5,10\n",
    "lanes.csv": "from,to,lead_time,lead_time_max\nmaker,dc,1,2\ndc,stores,0,\ndc,online,0,\n",
    "stock.csv": "location,sku,quantity\ndc,A,40\ndc,B,20\n",
    "rules.yaml": "finance: {opening_cash: 1000, treasury_buffer: 200}\n"
    "rules:\n  reserve_stock: [{location: dc, skus: [B], quantity: 5, tiers: [web]}]\n",
}


def _sales(weeks: int = 30) -> str:
    rng = np.random.default_rng(7)
    lines = ["date,channel,sku,quantity,stockout"]
    for w in range(weeks):
        date = np.datetime64("2024-01-01") + np.timedelta64(7 * w, "D")
        for channel, scale in (("stores", 1.0), ("online", 0.5)):
            for sku, mean in (("A", 12), ("B", 5)):
                lines.append(f"{date},{channel},{sku},{rng.poisson(mean * scale)},0")
    return "\n".join(lines) + "\n"


def _replace_line(name: str, line: int, text: str) -> dict[str, str]:
    """GOOD's ``name`` with its ``line`` (1 = header) replaced."""
    lines = GOOD[name].splitlines()
    lines[line - 1] = text
    return {name: "\n".join(lines) + "\n"}


def _append(name: str, text: str) -> dict[str, str]:
    return {name: GOOD[name] + text + "\n"}


SALES = _sales()

#: (id, changed files, expected error fragments, extra CLI arguments)
BROKEN = [
    (
        "negative-cost",
        _replace_line("products.csv", 3, "B,gadget,-10,20,22"),
        ["products.csv:3:unit_cost: -10 is negative"],
        [],
    ),
    (
        "non-numeric-cost",
        _replace_line("products.csv", 2, "A,widget,four,10,"),
        ["products.csv:2:unit_cost: 'four' is not a number"],
        [],
    ),
    (
        "missing-price",
        _replace_line("products.csv", 2, "A,widget,4,,"),
        ["products.csv:2:price: no price for SKU 'A' in channel(s) stores, online"],
        [],
    ),
    (
        "missing-channel-price",
        _replace_line("products.csv", 2, "A,widget,4,,11"),
        ["products.csv:2:price: no price for SKU 'A' in channel(s) stores"],
        [],
    ),
    (
        "duplicate-sku",
        _append("products.csv", "A,again,5,9,"),
        ["products.csv:4:sku: duplicate SKU 'A' (first on row 2)"],
        [],
    ),
    (
        "missing-column",
        {"products.csv": "sku,price\nA,10\nB,20\n"},
        ["products.csv:1: missing required column unit_cost"],
        [],
    ),
    (
        "unknown-column",
        _replace_line("products.csv", 1, "sku,description,unit_cst,price,price_online"),
        ["products.csv:1:unit_cst: unknown column", "products.csv:1: missing required column unit_cost"],
        [],
    ),
    (
        "price-for-unknown-channel",
        {"products.csv": "sku,unit_cost,price,price_shop\nA,4,10,11\nB,10,20,\n"},
        ["products.csv:1:price_shop: no channel 'shop'"],
        [],
    ),
    (
        "short-row",
        _replace_line("products.csv", 3, "B,gadget,10"),
        ["products.csv:3: has 3 fields, the header has 5"],
        [],
    ),
    ("bad-id", _replace_line("locations.csv", 2, "dc 1,1000"), ["locations.csv:2:location: 'dc 1' is not an id"], []),
    (
        "duplicate-location",
        _append("locations.csv", "dc,500"),
        ["locations.csv:3:location: duplicate location 'dc' (first on row 2)"],
        [],
    ),
    ("zero-capacity", _replace_line("locations.csv", 2, "dc,0"), ["locations.csv:2:capacity: 0 must be above 0"], []),
    (
        "lane-to-unknown-node",
        _replace_line("lanes.csv", 3, "dc,shop,0,"),
        ["lanes.csv:3:to: unknown node 'shop' (not a location or channel)"],
        [],
    ),
    (
        "lane-from-unknown-supplier",
        _replace_line("lanes.csv", 2, "makr,dc,1,2"),
        ["lanes.csv:2:from: unknown node 'makr'"],
        [],
    ),
    (
        "lane-lead-times-reversed",
        _replace_line("lanes.csv", 2, "maker,dc,3,2"),
        ["lanes.csv:2:lead_time_max: 2 is below lead_time 3"],
        [],
    ),
    (
        "lane-negative-lead-time",
        _replace_line("lanes.csv", 2, "maker,dc,-1,"),
        ["lanes.csv:2:lead_time: -1 is negative"],
        [],
    ),
    ("supplier-unknown-sku", _append("suppliers.csv", "maker,Z,3,,10"), ["suppliers.csv:4:sku: unknown SKU 'Z'"], []),
    (
        "supplier-conflicting-order-cost",
        _replace_line("suppliers.csv", 3, "maker,B,10,5,20"),
        ["suppliers.csv:3:fixed_order_cost: 20 differs from 10 on row 2"],
        [],
    ),
    (
        "tier-shares",
        {"channels.csv": GOOD["channels.csv"].replace("online,web,0,1,", "online,web,0,0.5,\nonline,app,1,0.3,")},
        ["channels.csv:3:demand_share: the tiers of channel 'online' sum to 0.8, not 1"],
        [],
    ),
    (
        "fill-rate-above-one",
        _replace_line("channels.csv", 3, "online,web,0,1,1.5"),
        ["channels.csv:3:min_fill_rate: 1.5 is outside 0 … 1"],
        [],
    ),
    ("stock-unknown-location", _append("stock.csv", "dc9,A,3"), ["stock.csv:4:location: unknown location 'dc9'"], []),
    (
        "stock-non-numeric",
        _replace_line("stock.csv", 2, "dc,A,lots"),
        ["stock.csv:2:quantity: 'lots' is not a number"],
        [],
    ),
    (
        "sales-unknown-sku",
        {"sales.csv": SALES + "2024-01-01,stores,Z,3,0\n"},
        [f"sales.csv:{SALES.count(chr(10)) + 1}:sku: unknown SKU 'Z'"],
        [],
    ),
    (
        "sales-negative",
        {"sales.csv": SALES.replace("2024-01-01,stores,A,", "2024-01-01,stores,A,-", 1)},
        ["sales.csv:2:quantity:", "is negative"],
        [],
    ),
    (
        "sales-gap",
        {"sales.csv": "\n".join(line for line in SALES.splitlines() if not line.startswith("2024-02-05")) + "\n"},
        ["sales.csv:date: gap in the calendar", "2024-02-05"],
        [],
    ),
    (
        "rules-out-of-range",
        {"rules.yaml": "rules: {max_channel_share: 2}\n"},
        ["rules.yaml: rules.max_channel_share:"],
        [],
    ),
    (
        "rules-unknown-key",
        {"rules.yaml": "rules: {cash_rules: true}\n"},
        ["rules.yaml: rules.cash_rules: unknown key; did you mean 'cash_rule'?"],
        [],
    ),
    (
        "rules-reserve-unknown-location",
        {"rules.yaml": "rules:\n  reserve_stock: [{location: dc9, quantity: 5, tiers: [web]}]\n"},
        ["rules.yaml: rules.reserve_stock[0].location: no such location 'dc9'"],
        [],
    ),
    (
        "nrv-above-price",
        {"products.csv": "sku,unit_cost,price,price_online,net_realisable_value\nA,4,10,,50\nB,10,20,22,\n"},
        ["products.csv:2:net_realisable_value: 50 is above the highest price"],
        [],
    ),
    (
        "rules-period-days-differ",
        {"rules.yaml": "episode: {period_days: 1, unmet_demand: lost_sales}\n"},
        ["rules.yaml: episode.period_days: 1 but the history", "has 7-day periods"],
        [],
    ),
    ("rules-not-yaml", {"rules.yaml": "rules: [unclosed\n"}, ["rules.yaml: line 2, column 1: not valid YAML"], []),
    ("rules-not-a-mapping", {"rules.yaml": "- rules\n"}, ["rules.yaml: (top level): expected a mapping"], []),
    (
        "period-days-on-dated-history",
        {},
        ["--period-days 1: the dates of", "are 7 days apart"],
        ["--period-days", "1"],
    ),
    (
        "holdout-too-long",
        {},
        ["--holdout-periods 25: leaves 5 of the history's 30 periods"],
        ["--holdout-periods", "25"],
    ),
    (
        "two-files-at-once",
        {**_replace_line("products.csv", 3, "B,gadget,-10,20,22"), **_replace_line("lanes.csv", 3, "dc,shop,0,")},
        ["products.csv:3:unit_cost", "lanes.csv:3:to"],
        [],
    ),
]


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")}


def _write_company(folder: Path, changes: dict[str, str]) -> None:
    for name, text in {**GOOD, "sales.csv": SALES, **changes}.items():
        (folder / name).write_text(text, encoding="utf-8")


def test_the_good_small_company_builds(tmp_path: Path):
    _write_company(tmp_path, {})
    result = _invoke(_build_argv(tmp_path, tmp_path / "out" / "small.yaml", "--holdout-periods", "6"))
    assert result.exit_code == 0, result.stderr
    scenario = load_scenario(tmp_path / "out" / "small.yaml").scenario
    assert scenario.products[1].price == {"stores": 20.0, "online": 22.0} and scenario.products[0].price == 10.0
    assert scenario.channels[0].tiers[0].id == "stores"  # a channel's only tier, unnamed, is the channel
    assert scenario.lanes[0].lead_time.kind == "uniform"
    assert scenario.suppliers[0].items["B"].minimum_order_quantity == 5


@pytest.mark.parametrize(("changes", "expected", "extra"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_tables_fail_cleanly(tmp_path: Path, changes: dict[str, str], expected: list[str], extra: list[str]):
    _write_company(tmp_path, changes)
    before = _snapshot(tmp_path)
    result = _invoke(_build_argv(tmp_path, tmp_path / "out" / "my.yaml", *extra))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and line.strip() != COMPILE_NOTICE]
    assert lines and all(line.startswith("error: ") for line in lines), result.stderr
    for fragment in expected:
        assert any(fragment in line for line in lines), f"{fragment!r} not in {result.stderr!r}"
    assert _snapshot(tmp_path) == before, "the build left a file behind"


def test_the_corpus_is_large_enough():
    assert len(BROKEN) >= 15
    assert len({case[0] for case in BROKEN}) == len(BROKEN)
    assert isinstance(yaml.safe_load(GOOD["rules.yaml"]), dict)


def test_an_unreadable_table_does_not_make_every_reference_to_it_an_error(tmp_path: Path):
    _write_company(tmp_path, {"channels.csv": "chanel,tier\nstores,\nonline,web\n"})
    result = _invoke(_build_argv(tmp_path, tmp_path / "my.yaml"))
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert [line.split(": ", 2)[1].rsplit("/", 1)[-1] for line in lines] == ["channels.csv:1:chanel", "channels.csv:1"]
    assert "missing required column channel" in lines[1]


def test_excel_csv_with_byte_order_mark_and_crlf_builds(tmp_path: Path):
    _write_company(tmp_path, {})
    for name in ("products.csv", "lanes.csv"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    result = _invoke(_build_argv(tmp_path, tmp_path / "my.yaml", "--method", "bootstrap"))
    assert result.exit_code == 0, result.stderr
    assert [p.id for p in load_scenario(tmp_path / "my.yaml").scenario.products] == ["A", "B"]


def test_a_period_numbered_history_takes_its_period_length_from_the_option(tmp_path: Path):
    numbered = ["period,channel,sku,quantity"]
    for line in SALES.splitlines()[1:]:
        date, rest = line.split(",", 1)
        week = (np.datetime64(date) - np.datetime64("2024-01-01")).astype(int) // 7
        numbered.append(f"{week},{rest.rsplit(',', 1)[0]}")
    _write_company(tmp_path, {"sales.csv": "\n".join(numbered) + "\n"})
    result = _invoke(_build_argv(tmp_path, tmp_path / "my.yaml", "--period-days", "1", "--holdout-periods", "5"))
    assert result.exit_code == 0, result.stderr
    episode = load_scenario(tmp_path / "my.yaml").scenario.episode
    assert (episode.period_days, episode.horizon) == (1, 5)


def test_a_table_full_of_problems_is_summarised(tmp_path: Path):
    _write_company(tmp_path, _append("suppliers.csv", "\n".join(f"maker,Z{i},1,,10" for i in range(30))))
    result = _invoke(_build_argv(tmp_path, tmp_path / "my.yaml"))
    lines = result.stderr.splitlines()
    assert result.exit_code == 2 and len(lines) == 21
    assert "suppliers.csv: ... and 10 more problems" in lines[-1]
