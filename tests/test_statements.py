"""Financial statements reconcile with the ledger to the cent, and trajectory plots show the
simulator's period records (issue 15, acceptance 4 and 6).

Scenarios come from :func:`invalloc.config.generate.generate_scenario` with perishable SKUs,
net realisable values below cost, transfers, sales lead times and the cash rule, under FIFO
and weighted average. The test checks the statements against the simulator's own ledger and
state itself (exact arithmetic), not only through :func:`reconcile`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from invalloc.baselines import make_policy
from invalloc.config.generate import generate_scenario
from invalloc.config.loader import load_scenario, parse_scenario
from invalloc.sim.accounts import Account
from invalloc.sim.network import compile_network
from invalloc.sim.simulator import Simulator, run_episode
from invalloc.sim.statements import BookedSimulator, build_statements, reconcile, write_statements

CENT = Fraction(1, 200)  # half a cent


def _close(a: float, b: float) -> bool:
    return abs(Fraction(float(a)) - Fraction(float(b))) < CENT


def _network(seed: int, cost_method: str, **options):
    data = generate_scenario(5, 3, 2, seed=seed, cost_method=cost_method, horizon=26, **options)
    return compile_network(parse_scenario(data, f"generated-{seed}", Path(".")))


def _credit_network(cost_method: str):
    """A company that starts with its credit line drawn (credit used, interest)."""
    data = generate_scenario(4, 2, 2, seed=7, cost_method=cost_method, horizon=20, cash_rule=False, sales_lead_time=2)
    data["finance"]["opening_cash"] = -1e5
    data["finance"]["credit_line"] = 1e7
    data["finance"]["cost_of_capital"] = 0.2
    return compile_network(parse_scenario(data, "generated-credit", Path(".")))


CASES = [
    pytest.param(lambda m: _network(3, m), id="backlog-perishable-nrv"),
    pytest.param(lambda m: _network(4, m, sales_lead_time=1), id="lost-sales-sales-lead-time"),
    pytest.param(_credit_network, id="credit-line"),
]


@pytest.mark.parametrize("cost_method", ["fifo", "weighted_average"])
@pytest.mark.parametrize("make", CASES)
def test_statements_reconcile_to_the_cent(make, cost_method: str) -> None:
    network = make(cost_method)
    assert network.scenario.finance.cost_method == cost_method
    simulator = BookedSimulator(network)
    reports = run_episode(simulator, make_policy("base_stock", {"cover": "4"}), seed=3)
    books = simulator.books
    statements = build_statements(books)
    ledger = simulator.ledger.balance
    roll = statements.inventory_rollforward
    rows, total = roll.iloc[:-1], roll.iloc[-1]

    # Every DC × SKU: opening + receipts − transfers out − issued − write-downs − expiry = closing.
    for row in rows.itertuples(index=False):
        value = (
            Fraction(row.opening_value)
            + Fraction(row.receipts_value)
            - Fraction(row.transfers_out_value)
            - Fraction(row.issued_value)
            - Fraction(row.write_downs_value)
            - Fraction(row.expired_value)
        )
        assert abs(value - Fraction(row.closing_value)) < CENT, (row.dc, row.sku)
        units = row.opening_units + row.receipts_units - row.transfers_out_units - row.issued_units
        assert units - row.expired_units == pytest.approx(row.closing_units, abs=1e-6)
    # ... and the rows add up to the ledger and the simulator's stock.
    assert _close(total["closing_value"], ledger[Account.INVENTORY])
    assert _close(total["closing_value"], simulator.layers.value())
    closing_units = rows.pivot(index="dc", columns="sku", values="closing_units").loc[network.locations, network.skus]
    np.testing.assert_allclose(closing_units.to_numpy(), simulator.on_hand, atol=1e-6)
    written = float(-statements.income_statement.set_index("line").loc[
        ["write-downs: lower of cost and NRV", "write-downs: expiry"], "amount"
    ].sum())  # fmt: skip
    assert _close(written, ledger[Account.WRITE_DOWNS])
    assert _close(total["write_downs_value"] + total["expired_value"], ledger[Account.WRITE_DOWNS])
    assert _close(-statements.income_statement.set_index("line").at["cost of goods sold", "amount"],
                  ledger[Account.COST_OF_GOODS_SOLD])  # fmt: skip

    # The balance sheet balances, and its lines are the ledger's accounts.
    sheet = statements.balance_sheet.set_index("line")["amount"]
    assert _close(sheet["total assets"], sheet["total liabilities and equity"])
    assert _close(sheet["inventory in DCs"], ledger[Account.INVENTORY])
    assert _close(sheet["cash"] - sheet["credit used"], ledger[Account.CASH])
    assert _close(sheet["retained earnings"], sum(r.profit for r in reports))

    # The cash-flow statement closes at the ledger's cash, period by period.
    flows = statements.cash_flow
    assert _close(flows["closing_cash"].iloc[-1], ledger[Account.CASH])
    for report, closing in zip(reports, flows["closing_cash"].iloc[:-1], strict=True):
        assert _close(closing, report.cash)
    assert statements.reconciled, statements.reconciliation()


def test_the_generated_cases_exercise_expiry_write_downs_transfers_and_credit() -> None:
    """The reconciliation above is only worth something if every movement happens."""
    drawn = {}
    for name, network in (("expiry", _network(3, "fifo")), ("credit", _credit_network("fifo"))):
        simulator = BookedSimulator(network)
        run_episode(simulator, make_policy("base_stock", {"cover": "4"}), seed=3)
        drawn[name] = build_statements(simulator.books)
    roll = drawn["expiry"].inventory_rollforward.iloc[-1]
    assert roll["expired_value"] > 0 and roll["write_downs_value"] > 0 and roll["transfers_out_value"] > 0
    sheet = drawn["credit"].balance_sheet.set_index("line")["amount"]
    income = drawn["credit"].income_statement.set_index("line")["amount"]
    assert sheet["credit used"] > 0 and income["interest on credit used"] < 0


def test_booked_simulator_runs_the_same_episode() -> None:
    network = _network(4, "weighted_average")
    plain = run_episode(Simulator(network), make_policy("base_stock", {}), seed=5)
    booked = run_episode(BookedSimulator(network), make_policy("base_stock", {}), seed=5)
    assert [r.reward for r in plain] == [r.reward for r in booked]
    assert [r.cash for r in plain] == [r.cash for r in booked]


def test_a_wrong_movement_fails_the_reconciliation() -> None:
    simulator = BookedSimulator(_network(2, "fifo"))
    run_episode(simulator, make_policy("base_stock", {}), seed=1)
    books = simulator.books
    assert build_statements(books).reconciled
    books.receipts_value[3, 0, 0] += 0.01  # one receipt booked a cent too high
    failed = [check.name for check in reconcile(books) if not check.ok]
    assert any("receipts" in name for name in failed) and any("row closes" in name for name in failed)


def test_statement_files(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    simulator = BookedSimulator(_network(2, "weighted_average"))
    run_episode(simulator, make_policy("base_stock", {}), seed=1)
    statements = build_statements(simulator.books)
    written = write_statements([("base_stock", 0, statements)], tmp_path / "out", "EUR")
    names = {path.name for path in written}
    assert {"income_statement.csv", "inventory_rollforward.csv", "statements.xlsx", "statements.json"} <= names
    summary = json.loads((tmp_path / "out" / "statements.json").read_text())
    assert summary["reconciled"] is True and summary["statements"][0]["reconciled"] is True
    assert summary["statements"][0]["reconciliation"].startswith("reconciled")
    book = load_workbook(tmp_path / "out" / "statements.xlsx")
    assert book.sheetnames == [
        "Reconciliation",
        "Income Statement",
        "Balance Sheet",
        "Cash Flow",
        "Inventory Rollforward",
    ]
    assert "reconciled" in book["Reconciliation"]["A2"].value
    income = pd.read_csv(tmp_path / "out" / "income_statement.csv")
    revenue = income.set_index("line").at["revenue", "amount"]
    assert revenue == round(float(-simulator.ledger.balance[Account.REVENUE]), 2)  # rounded to cents when written


# --------------------------------------------------------------------------- trajectories
def _invalloc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invalloc", *args], capture_output=True, text=True, cwd=cwd)


def _check_against_records(frame: pd.DataFrame, reports, network, sku: str) -> None:
    """The CSV's rows are the simulator's period records for ``sku`` (every DC)."""
    s = network.skus.index(sku)
    unmet = "backlog_units" if network.scenario.episode.unmet_demand == "backlog" else "lost_units"
    names = network.decision_names
    assert sorted(frame["period"].unique()) == [r.period for r in reports]
    for report in reports:
        at = frame[frame["period"] == report.period].set_index("dc")
        for d, dc in enumerate(network.locations):
            assert at.at[dc, "on_hand"] == pytest.approx(report.on_hand[d, s], abs=1e-9)
            orders = [i for i, n in enumerate(names) if n.startswith("order/") and n.endswith(f"/{dc}/{sku}")]
            assert at.at[dc, "orders_requested"] == pytest.approx(report.decision.requested[orders].sum())
            assert at.at[dc, "orders_executed"] == pytest.approx(report.decision.executed[orders].sum())
            replenish = [
                i for i, n in enumerate(names) if n.startswith(("order/", "transfer/")) and n.endswith(f"/{dc}/{sku}")
            ]
            cut = (report.decision.requested[replenish] - report.decision.executed[replenish] > 1e-9).any()
            assert at.at[dc, "cut"] == int(cut)
        np.testing.assert_allclose(at["cash"].to_numpy(), report.cash, rtol=1e-12)
        np.testing.assert_allclose(at[unmet].to_numpy(), report.short[:, s].sum(), rtol=1e-12)
        assert (at["rule_interventions"] == report.decision.intervention_count).all()


def test_simulate_writes_statements_and_plots_that_match_the_records(tmp_path: Path) -> None:
    result = _invalloc(
        "simulate", "--scenario", "tiny", "--seed", "4", "--episodes", "2", "--json",
        "--statements", "st", "--plot", "pl", "--plot-skus", "gadget",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["statements_reconciled"] is True
    summary = json.loads((tmp_path / "st" / "statements.json").read_text())
    assert [entry["episode"] for entry in summary["statements"]] == [0, 1] and summary["reconciled"]
    assert {p.name for p in (tmp_path / "pl").iterdir()} == {
        "overview.png", "overview.csv", "trajectory_gadget.png", "trajectory_gadget.csv",
    }  # fmt: skip
    assert (tmp_path / "pl" / "trajectory_gadget.png").stat().st_size > 10_000
    network = compile_network(load_scenario("tiny"))
    reports = run_episode(Simulator(network), make_policy("base_stock", {}), seed=4)
    frame = pd.read_csv(tmp_path / "pl" / "trajectory_gadget.csv")
    assert set(frame["sku"]) == {"gadget"}
    _check_against_records(frame, reports, network, "gadget")
    overview = pd.read_csv(tmp_path / "pl" / "overview.csv")
    assert set(overview["sku"]) == set(network.skus)  # tiny has two SKUs: both in the overview
    _check_against_records(overview[overview["sku"] == "widget"], reports, network, "widget")


def test_compare_report_has_statements_and_trajectories(tmp_path: Path) -> None:
    from invalloc.evaluation.compare import run_comparison
    from invalloc.evaluation.report import write_report

    comparison = run_comparison(
        "tiny", ["base_stock", "proportional"], 2, 11, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        processes=1, progress=False, log_to_mlflow=False,
    )  # fmt: skip
    page = write_report(comparison, tmp_path / "report")
    text = page.read_text()
    assert "Financial statements" in text and "What each policy did" in text
    summary = json.loads((tmp_path / "report" / "statements" / "statements.json").read_text())
    assert summary["reconciled"] and {e["policy"] for e in summary["statements"]} == {"base_stock", "proportional"}
    network = compile_network(load_scenario("tiny"))
    for label in ("base_stock", "proportional"):
        folder = tmp_path / "report" / "trajectories" / label
        skus = [p.stem.removeprefix("trajectory_") for p in folder.glob("trajectory_*.png")]
        assert sorted(skus) == sorted(network.skus)
        assert f"trajectories/{label}/trajectory_{skus[0]}.png" in text
        reports = run_episode(Simulator(network), make_policy(label, {}), seed=11)
        for sku in skus:
            _check_against_records(pd.read_csv(folder / f"trajectory_{sku}.csv"), reports, network, sku)


def test_trajectories_mark_rule_interventions(tmp_path: Path) -> None:
    """A policy that asks for far too much: the rules cut its orders, and the plot's rows say where."""
    from invalloc.evaluation.trajectories import episode_plots, save_figures

    network = _network(3, "fifo")
    simulator = BookedSimulator(network)
    reports = run_episode(simulator, make_policy("fixed", {"quantities": "500"}), seed=0)
    drawn = episode_plots(reports, simulator.books, network, "fixed", ["sku001"], ["dc_central", "dc_1"])
    assert set(drawn) == {"overview", "trajectory_sku001"}
    files = save_figures(drawn, tmp_path)
    assert sorted(p.name for p in files) == sorted(
        ["overview.png", "overview.csv", "trajectory_sku001.png", "trajectory_sku001.csv"]
    )
    frame = pd.read_csv(tmp_path / "trajectory_sku001.csv")
    assert set(frame["dc"]) == {"dc_central", "dc_1"} and frame["cut"].sum() > 0
    assert (frame["rule_interventions"] > 0).any()
    last = frame[frame["period"] == reports[-1].period].set_index("dc")
    s = network.skus.index("sku001")
    for dc in ("dc_central", "dc_1"):
        assert last.at[dc, "in_transit"] == simulator.inbound[network.locations.index(dc), s]
    for report in reports:  # the CSV's rows are the period records, for the chosen DCs
        at = frame[frame["period"] == report.period].set_index("dc")
        for dc in ("dc_central", "dc_1"):
            assert at.at[dc, "on_hand"] == report.on_hand[network.locations.index(dc), s]


def test_policy_labels_are_short() -> None:
    from invalloc.evaluation.trajectories import policy_label, unique_labels

    run_id = "0123456789abcdef0123456789abcdef"
    assert policy_label(f"run:{run_id}", "ppo-retail-s0") == "ppo-retail-s0"
    assert policy_label(f"run:{run_id}", f"run:{run_id}") == "run 01234567"
    assert policy_label("models:/retail_ppo@champion", "x") == "retail_ppo@champion"
    assert len(policy_label("base_stock:cover=2.5,stop=auto,review=3,extra=1")) == 40
    assert policy_label("base_stock@/data/company/tuned.yaml:stop=auto") == "base_stock@tuned.yaml:stop=auto"
    assert policy_label("base_stock@tuned") == "base_stock@tuned"
    assert unique_labels(["a", "a", "b"]) == ["a", "a (2)", "b"]
