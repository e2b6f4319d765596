"""Management reporting from the simulator's books: the financial statements of one episode.

A :class:`BookedSimulator` is a :class:`~invalloc.sim.simulator.Simulator` that also keeps,
period by period, what the statements need and the ledger does not hold per DC × SKU: the
inventory movements of every DC × SKU in units and at cost (receipts, transfers out, goods
issued to customers, expiry, lower of cost and NRV), the cash paid and collected by kind, and
the ledger's balances after each phase. From those books (:class:`EpisodeBooks`)
:func:`build_statements` draws up:

* the **income statement** of the episode (revenue, cost of goods sold, gross margin, holding,
  freight, ordering, penalties, write-downs, interest, net profit);
* the **balance sheet** at the horizon (cash, receivables, inventory, in transit; payables,
  credit used; opening equity and retained earnings) — assets = liabilities + equity;
* the **cash-flow statement**, direct method, period by period, with the cash position
  against the treasury buffer;
* the **inventory roll-forward** per DC × SKU (the scenario has no product groups, so each
  SKU is its own group), in units and at cost under the scenario's cost method (FIFO or
  weighted average): opening + receipts − transfers out − cost of goods issued − write-downs
  − expiry = closing.

:func:`reconcile` checks the statements against the ledger: every roll-forward row closes,
the rows add up to the ledger's inventory account at the opening and the horizon, receipts,
issues and write-downs add up to the ledger's postings in the phases that made them, the
balance sheet balances and the cash-flow statement closes at the ledger's cash. Sums are
taken exactly (:func:`math.fsum` over the float64 amounts, differences as
:class:`fractions.Fraction`), so the only differences left are the simulator's own float
rounding; each check passes when it is below half a cent (:data:`CENT_TOLERANCE`).
Money is in the scenario currency, rounded to cents only when written (:func:`write_statements`).

Goods shipped to customers leave the DC's inventory when they are shipped; the ledger books
their cost of goods sold when they are delivered (after the sales lane's lead time), so the
roll-forward's *cost of goods issued* equals the ledger's cost of goods sold plus the cost of
goods still on their way to customers at the horizon.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from invalloc.sim.accounts import Account
from invalloc.sim.simulator import Simulator

#: A reconciliation check passes when its difference is below half a cent (currency units).
CENT_TOLERANCE = 0.005
#: Phases of a period, in order (rows of :attr:`EpisodeBooks.phase_balance`).
PHASES = ("decision", "suppliers", "receiving", "customers", "finance")
#: Files :func:`write_statements` writes (CSV per statement, the workbook, the JSON summary).
STATEMENT_FILES = {
    "income_statement": "income_statement.csv",
    "balance_sheet": "balance_sheet.csv",
    "cash_flow": "cash_flow.csv",
    "inventory_rollforward": "inventory_rollforward.csv",
    "reconciliation": "reconciliation.csv",
}
WORKBOOK_FILE = "statements.xlsx"
SUMMARY_FILE = "statements.json"

_CASH = int(Account.CASH)
_INVENTORY = int(Account.INVENTORY)
_WRITE_DOWNS = int(Account.WRITE_DOWNS)


@dataclass
class EpisodeBooks:
    """What a :class:`BookedSimulator` kept of one episode.

    Money in the scenario currency, quantities in units. Arrays per period have the period
    first: ``(P, D, S)`` per DC × SKU, ``(P,)`` per period; ``P`` is the number of periods run.

    :param opening_balance: the ledger after the opening stock and cash were booked (len(Account),).
    :param phase_balance: the ledger after each phase of each period, (P, len(PHASES), len(Account)).
    :param opening_units: on hand per DC × SKU at the start, (D, S); ``opening_value`` at cost.
    :param receipts_units: put away (purchases and transfers arriving), (P, D, S); ``receipts_value``
        at the value they carried in transit (purchase cost plus capitalised freight).
    :param transfers_out_units: sent to another DC, (P, D, S); ``transfers_out_value`` at cost.
    :param issued_units: shipped to customers, (P, D, S); ``issued_value`` at cost.
    :param expired_units: written off at expiry, (P, D, S); ``expired_value`` at cost.
    :param written_down_value: lower of cost and NRV, (P, D, S).
    :param closing_units: on hand at each close, (P, D, S); ``closing_value`` at cost.
    :param in_transit_units: on the way to each DC at each close, (P, D, S).
    :param collected: customer payments received, (P,); ``paid`` supplier invoices paid;
        ``purchase_freight``, ``transfer_freight``, ``sales_freight`` paid; ``holding``,
        ``penalties``, ``interest`` paid at the close.
    :param customer_transit_value: cost of goods on the way to customers at the horizon.
    """

    scenario: str
    currency: str
    cost_method: str
    locations: list[str]
    skus: list[str]
    treasury_buffer: float
    credit_line: float
    seed: int
    opening_balance: np.ndarray
    opening_units: np.ndarray
    opening_value: np.ndarray
    phase_balance: np.ndarray
    receipts_units: np.ndarray
    receipts_value: np.ndarray
    transfers_out_units: np.ndarray
    transfers_out_value: np.ndarray
    issued_units: np.ndarray
    issued_value: np.ndarray
    expired_units: np.ndarray
    expired_value: np.ndarray
    written_down_value: np.ndarray
    closing_units: np.ndarray
    closing_value: np.ndarray
    in_transit_units: np.ndarray
    collected: np.ndarray
    paid: np.ndarray
    purchase_freight: np.ndarray
    transfer_freight: np.ndarray
    sales_freight: np.ndarray
    holding: np.ndarray
    penalties: np.ndarray
    interest: np.ndarray
    customer_transit_value: float

    @property
    def periods(self) -> int:
        return len(self.collected)

    @property
    def closing_balance(self) -> np.ndarray:
        """The ledger at the horizon (len(Account),)."""
        return self.phase_balance[-1, -1] if self.periods else self.opening_balance

    @property
    def cash(self) -> np.ndarray:
        """Cash at each close (P,); negative when the credit line is drawn."""
        return self.phase_balance[:, -1, _CASH]


class _Recording:
    """Per-period lists that :class:`BookedSimulator` appends to; stacked by :meth:`books`."""

    FIELDS = (
        "phase_balance",
        "receipts_units",
        "receipts_value",
        "transfers_out_units",
        "transfers_out_value",
        "issued_units",
        "issued_value",
        "expired_units",
        "expired_value",
        "written_down_value",
        "closing_units",
        "closing_value",
        "in_transit_units",
        "collected",
        "paid",
        "purchase_freight",
        "transfer_freight",
        "sales_freight",
        "holding",
        "penalties",
        "interest",
    )

    def __init__(self) -> None:
        self.lists: dict[str, list] = {name: [] for name in self.FIELDS}
        self.phases: list[np.ndarray] = []

    def add(self, name: str, value) -> None:
        self.lists[name].append(value)


class BookedSimulator(Simulator):
    """A :class:`Simulator` that keeps the books the financial statements are drawn from.

    Same arguments, same episodes bit for bit (it only reads the state between the phases
    of a period); a little slower, so use it for the episodes that are reported. After an
    episode, :attr:`books` returns its :class:`EpisodeBooks`.
    """

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed=seed)
        self._recording = _Recording()
        self._opening = (
            self.ledger.balance.copy(),
            self.on_hand.copy(),
            self._layer_value(),
        )

    def _layer_value(self) -> np.ndarray:
        """Value at cost of every DC × SKU's layers, (D, S)."""
        layers = self.layers
        return np.einsum("dsk,dsk->ds", layers.quantity, layers.unit_cost)

    def _phase_done(self) -> None:
        self._recording.phases.append(self.ledger.balance.copy())

    # Each phase wraps the simulator's own actor: state read before, the actor's turn, state read after.
    def _decision_point(self):
        inner = super()._decision_point()
        while True:
            units, value, cash = self.on_hand.copy(), self._layer_value(), self.ledger.balance.item(_CASH)
            self._recording.phases = []
            next(inner)
            self._recording.add("transfers_out_units", units - self.on_hand)
            self._recording.add("transfers_out_value", value - self._layer_value())
            self._recording.add("transfer_freight", cash - self.ledger.balance.item(_CASH))
            self._phase_done()
            yield

    def _suppliers(self):
        inner = super()._suppliers()
        while True:
            cash = self.ledger.balance.item(_CASH)
            next(inner)
            self._recording.add("purchase_freight", cash - self.ledger.balance.item(_CASH))
            self._phase_done()
            yield

    def _receiving(self):
        inner = super()._receiving()
        while True:
            slot = self.period % self._ring
            self._recording.add("receipts_units", self.transit_units[slot].copy())
            self._recording.add("receipts_value", self.transit_value[slot].copy())
            next(inner)
            self._phase_done()
            yield

    def _customers(self):
        inner = super()._customers()
        while True:
            units, value, cash = self.on_hand.copy(), self._layer_value(), self.ledger.balance.item(_CASH)
            next(inner)
            self._recording.add("issued_units", units - self.on_hand)
            self._recording.add("issued_value", value - self._layer_value())
            self._recording.add("sales_freight", cash - self.ledger.balance.item(_CASH))
            self._phase_done()
            yield

    def _finance(self):
        inner = super()._finance()
        network = self.network
        perishable = bool((network.shelf_life > 0).any())
        nrv = network.net_realisable_value
        nrv_active = network.scenario.finance.lower_of_cost_and_nrv and bool(np.isfinite(nrv).any())
        while True:
            recording = self._recording
            recording.add("paid", float(self.payables.get(self.period, 0.0)))
            recording.add("collected", float(self.receivables.get(self.period, 0.0)))
            # What the close will write off, from the layers as they stand (as the close computes it).
            layers = self.layers
            quantity, cost = layers.quantity, layers.unit_cost
            held = quantity > 0.0
            expiring = held & (layers.expires <= self.period + 1) if perishable else np.zeros_like(held)
            recording.add("expired_units", np.where(expiring, quantity, 0.0).sum(axis=2))
            recording.add("expired_value", np.where(expiring, quantity * cost, 0.0).sum(axis=2))
            if nrv_active:
                above = held & ~expiring & (cost > nrv[None, :, None])
                excess = np.where(above, cost - nrv[None, :, None], 0.0)  # 0 where no NRV (inf)
                recording.add("written_down_value", (quantity * excess).sum(axis=2))
            else:
                recording.add("written_down_value", np.zeros(self.on_hand.shape))
            next(inner)
            report = self._report
            recording.add("holding", report.costs["holding"])
            recording.add("penalties", report.costs["penalties"])
            recording.add("interest", report.costs["interest"])
            recording.add("closing_units", self.on_hand.copy())
            recording.add("closing_value", self._layer_value())
            recording.add("in_transit_units", self.inbound.copy())
            self._phase_done()
            recording.add("phase_balance", np.stack(recording.phases))
            yield

    @property
    def books(self) -> EpisodeBooks:
        """The books of the periods run since the last :meth:`reset`."""
        network, scenario = self.network, self.network.scenario
        lists = self._recording.lists
        n_loc, n_sku = self.on_hand.shape
        periods = len(lists["collected"])

        def stacked(name: str, shape: tuple[int, ...]) -> np.ndarray:
            values = lists[name][:periods]
            return np.array(values, dtype=float) if values else np.zeros((0, *shape))

        grid = (n_loc, n_sku)
        arrays = {name: stacked(name, grid) for name in _Recording.FIELDS if name != "phase_balance"}
        for name in ("collected", "paid", "purchase_freight", "transfer_freight", "sales_freight"):
            arrays[name] = stacked(name, ())
        for name in ("holding", "penalties", "interest"):
            arrays[name] = stacked(name, ())
        opening_balance, opening_units, opening_value = self._opening
        return EpisodeBooks(
            scenario=scenario.name,
            currency=str(scenario.currency),
            cost_method=scenario.finance.cost_method,
            locations=list(network.locations),
            skus=list(network.skus),
            treasury_buffer=float(scenario.finance.treasury_buffer),
            credit_line=float(scenario.finance.credit_line),
            seed=int(self._seed),
            opening_balance=opening_balance,
            opening_units=opening_units,
            opening_value=opening_value,
            phase_balance=stacked("phase_balance", (len(PHASES), len(Account))),
            customer_transit_value=float(self.delivery_cost.sum()),
            **arrays,
        )


# --------------------------------------------------------------------------- statements
def _exact(values) -> float:
    """The exactly rounded sum of float amounts (:func:`math.fsum`)."""
    return math.fsum(np.asarray(values, dtype=float).ravel().tolist())


def _difference(a: float, b: float) -> float:
    """``a − b`` taken exactly, then rounded once."""
    return float(Fraction(a) - Fraction(b))


def _movement(books: EpisodeBooks, account: Account) -> float:
    """Net debit to ``account`` over the episode."""
    return _difference(float(books.closing_balance[account]), float(books.opening_balance[account]))


def income_statement(books: EpisodeBooks) -> pd.DataFrame:
    """The episode's income statement: ``line``, ``amount`` (revenue and profits positive, costs negative)."""
    revenue = -_movement(books, Account.REVENUE)
    cogs = _movement(books, Account.COST_OF_GOODS_SOLD)
    expiry = _exact(books.expired_value)
    write_downs = _movement(books, Account.WRITE_DOWNS)
    lines = [
        ("revenue", revenue),
        ("cost of goods sold", -cogs),
        ("gross margin", math.fsum([revenue, -cogs])),
        ("holding", -_movement(books, Account.HOLDING)),
        ("freight to customers", -_movement(books, Account.SHIPPING)),
        ("ordering (fixed cost per purchase order)", -_movement(books, Account.ORDERING)),
        ("penalties", -_movement(books, Account.PENALTIES)),
        ("write-downs: lower of cost and NRV", -math.fsum([write_downs, -expiry])),
        ("write-downs: expiry", -expiry),
        ("interest on credit used", -_movement(books, Account.INTEREST)),
    ]
    operating = [amount for name, amount in lines if name not in ("gross margin", "revenue", "cost of goods sold")]
    lines.append(("net profit", math.fsum([revenue, -cogs, *operating])))
    return pd.DataFrame([(name, amount + 0.0) for name, amount in lines], columns=["line", "amount"])  # no −0


def balance_sheet(books: EpisodeBooks) -> pd.DataFrame:
    """The balance sheet at the horizon: ``section``, ``line``, ``amount`` (all positive).

    Cash below zero is shown as credit used (a liability). Equity is the opening capital
    (stock and cash brought in) plus the episode's retained earnings (its net profit).
    """
    balance = books.closing_balance
    cash = float(balance[Account.CASH])
    profit_and_loss = range(int(Account.REVENUE), int(Account.INTEREST) + 1)
    retained = -_exact(
        [float(balance[a]) for a in profit_and_loss] + [-float(books.opening_balance[a]) for a in profit_and_loss]
    )
    rows = [
        ("assets", "cash", max(cash, 0.0)),
        ("assets", "receivables", float(balance[Account.RECEIVABLES])),
        ("assets", "inventory in DCs", float(balance[Account.INVENTORY])),
        ("assets", "inventory in transit", float(balance[Account.INVENTORY_IN_TRANSIT])),
        ("liabilities", "payables", -float(balance[Account.PAYABLES])),
        ("liabilities", "credit used", max(-cash, 0.0)),
        ("equity", "opening capital", -float(balance[Account.EQUITY])),
        ("equity", "retained earnings", retained),
    ]
    frame = pd.DataFrame(rows, columns=["section", "line", "amount"])
    totals = [
        ("total", "total assets", _exact(frame.loc[frame.section == "assets", "amount"])),
        ("total", "total liabilities and equity", _exact(frame.loc[frame.section != "assets", "amount"])),
    ]
    return pd.concat([frame, pd.DataFrame(totals, columns=frame.columns)], ignore_index=True)


def cash_flow(books: EpisodeBooks) -> pd.DataFrame:
    """The cash-flow statement, direct method, one row per period and an ``episode`` total row.

    Columns: ``period``, ``opening_cash``, ``received_from_customers``, ``paid_to_suppliers``,
    ``freight_paid`` (purchases, transfers and sales), ``holding_paid``, ``penalties_paid``,
    ``interest_paid`` (outflows negative), ``net_change``, ``closing_cash``,
    ``treasury_buffer`` and ``cash_over_buffer`` (closing cash − buffer; negative: below it).
    """
    opening = float(books.opening_balance[Account.CASH])
    flows = {
        "received_from_customers": books.collected,
        "paid_to_suppliers": -books.paid,
        "freight_paid": -(books.purchase_freight + books.transfer_freight + books.sales_freight),
        "holding_paid": -books.holding,
        "penalties_paid": -books.penalties,
        "interest_paid": -books.interest,
    }
    # Freight per period summed exactly from its three parts (as the other flows, one amount each).
    flows["freight_paid"] = -np.array(
        [
            _exact([p, t, s])
            for p, t, s in zip(books.purchase_freight, books.transfer_freight, books.sales_freight, strict=True)
        ]
    )
    rows = []
    cash = opening
    for t in range(books.periods):
        parts = [float(flows[name][t]) for name in flows]
        change = _exact(parts)
        closing = _exact([cash, *parts])
        rows.append([t, cash, *parts, change, closing])
        cash = closing
    columns = ["period", "opening_cash", *flows, "net_change", "closing_cash"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["period"] = frame["period"].astype(object)
    total = {"period": "episode", "opening_cash": opening}
    for name in flows:
        total[name] = _exact(flows[name])
    total["net_change"] = _exact([total[name] for name in flows])
    total["closing_cash"] = _exact([opening, *(total[name] for name in flows)])
    frame = pd.concat([frame, pd.DataFrame([total])], ignore_index=True)
    buffer = books.treasury_buffer if math.isfinite(books.treasury_buffer) else float("nan")
    frame["treasury_buffer"] = buffer
    frame["cash_over_buffer"] = frame["closing_cash"] - buffer
    frame["ledger_cash"] = [*books.cash.tolist(), float(books.closing_balance[Account.CASH])]
    return frame


def inventory_rollforward(books: EpisodeBooks) -> pd.DataFrame:
    """The inventory roll-forward per DC × SKU plus a ``total`` row, in units and at cost.

    ``*_units`` and ``*_value`` for opening, receipts, transfers_out, issued (cost of goods
    issued to customers), write_downs (value only), expired and closing; ``difference`` is
    opening + receipts − transfers out − issued − write-downs − expiry − closing (money, exact).
    """
    rows = []
    for d, dc in enumerate(books.locations):
        for s, sku in enumerate(books.skus):
            row = {"dc": dc, "sku": sku}
            for kind in ("units", "value"):
                opening = float(getattr(books, f"opening_{kind}")[d, s])
                receipts = _exact(getattr(books, f"receipts_{kind}")[:, d, s])
                transfers = _exact(getattr(books, f"transfers_out_{kind}")[:, d, s])
                issued = _exact(getattr(books, f"issued_{kind}")[:, d, s])
                expired = _exact(getattr(books, f"expired_{kind}")[:, d, s])
                written = _exact(books.written_down_value[:, d, s]) if kind == "value" else 0.0
                closing = (
                    float(getattr(books, f"closing_{kind}")[-1, d, s])
                    if books.periods
                    else float(getattr(books, f"opening_{kind}")[d, s])
                )
                row.update(
                    {
                        f"opening_{kind}": opening,
                        f"receipts_{kind}": receipts,
                        f"transfers_out_{kind}": transfers,
                        f"issued_{kind}": issued,
                        **({"write_downs_value": written} if kind == "value" else {}),
                        f"expired_{kind}": expired,
                        f"closing_{kind}": closing,
                    }
                )
                terms = [opening, receipts, -transfers, -issued, -written, -expired, -closing]
                row[f"difference_{kind}"] = float(sum((Fraction(x) for x in terms), Fraction(0)))
            rows.append(row)
    frame = pd.DataFrame(rows)
    total = {"dc": "total", "sku": ""}
    for column in frame.columns[2:]:
        total[column] = _exact(frame[column])
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


@dataclass
class Check:
    """One reconciliation: what the statements say against what the ledger says (money)."""

    name: str
    statement: float
    ledger: float
    difference: float
    ok: bool


def _check(name: str, statement: float, ledger: float) -> Check:
    difference = _difference(statement, ledger)
    return Check(name, statement, ledger, difference, abs(difference) < CENT_TOLERANCE)


def reconcile(books: EpisodeBooks, statements: Statements | None = None) -> list[Check]:
    """Every reconciliation of the statements against the ledger (see the module docstring)."""
    statements = statements or build_statements(books)
    roll = statements.inventory_rollforward
    rows, total = roll.iloc[:-1], roll.iloc[-1]
    phase = books.phase_balance  # (P, phases, accounts)
    before = np.concatenate([books.opening_balance[None], phase[:-1, -1]]) if books.periods else phase[:, 0]
    by_phase = np.concatenate([before[:, None], phase], axis=1) if books.periods else phase  # (P, 1 + phases, A)

    def posted(account: int, phase_name: str) -> float:
        """Net debit to ``account`` made in phase ``phase_name`` over the episode."""
        i = PHASES.index(phase_name) + 1
        return _exact(np.concatenate([by_phase[:, i, account], -by_phase[:, i - 1, account]]))

    worst_row = max((abs(x) for x in rows["difference_value"]), default=0.0)
    worst_units = max((abs(x) for x in rows["difference_units"]), default=0.0)
    income = statements.income_statement.set_index("line")["amount"]
    sheet = statements.balance_sheet.set_index("line")["amount"]
    flows = statements.cash_flow
    ledger_closing = books.closing_balance
    checks = [
        Check(
            "every roll-forward row closes (largest difference, value)",
            worst_row,
            0.0,
            worst_row,
            worst_row < CENT_TOLERANCE,
        ),
        Check(
            "every roll-forward row closes (largest difference, units)",
            worst_units,
            0.0,
            worst_units,
            worst_units < CENT_TOLERANCE,
        ),
        _check(
            "opening inventory = ledger inventory at the start",
            total["opening_value"],
            books.opening_balance[_INVENTORY],
        ),
        _check(
            "receipts = ledger postings into inventory on receipt",
            total["receipts_value"],
            posted(_INVENTORY, "receiving"),
        ),
        _check(
            "transfers out = ledger postings out of inventory at the decision point",
            total["transfers_out_value"],
            -posted(_INVENTORY, "decision"),
        ),
        _check(
            "goods issued = ledger postings out of inventory to customers",
            total["issued_value"],
            -posted(_INVENTORY, "customers"),
        ),
        _check(
            "goods issued = cost of goods sold + goods on their way to customers",
            total["issued_value"],
            _exact([_movement(books, Account.COST_OF_GOODS_SOLD), books.customer_transit_value]),
        ),
        _check(
            "write-downs + expiry = ledger write-downs",
            _exact([total["write_downs_value"], total["expired_value"]]),
            _movement(books, Account.WRITE_DOWNS),
        ),
        _check(
            "closing inventory = ledger inventory at the horizon", total["closing_value"], ledger_closing[_INVENTORY]
        ),
        _check(
            "net profit = ledger profit",
            float(income["net profit"]),
            -_exact([_movement(books, a) for a in Account if int(Account.REVENUE) <= int(a) <= int(Account.INTEREST)]),
        ),
        _check(
            "balance sheet balances (assets = liabilities + equity)",
            sheet["total assets"],
            sheet["total liabilities and equity"],
        ),
        _check("cash-flow closing cash = ledger cash", float(flows["closing_cash"].iloc[-1]), ledger_closing[_CASH]),
    ]
    if books.periods:
        per_period = _exact(np.abs(flows["closing_cash"].iloc[:-1].to_numpy(float) - books.cash).max(initial=0.0))
        checks.append(
            Check(
                "cash-flow closing cash = ledger cash, every period (largest difference)",
                per_period,
                0.0,
                per_period,
                per_period < CENT_TOLERANCE,
            )
        )
    return [Check(c.name, float(c.statement), float(c.ledger), float(c.difference), bool(c.ok)) for c in checks]


@dataclass
class Statements:
    """The four statements of one episode, and their reconciliation with the ledger."""

    income_statement: pd.DataFrame
    balance_sheet: pd.DataFrame
    cash_flow: pd.DataFrame
    inventory_rollforward: pd.DataFrame
    checks: list[Check] = field(default_factory=list)

    @property
    def reconciled(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def largest_difference(self) -> float:
        return max((abs(check.difference) for check in self.checks), default=0.0)

    def reconciliation(self) -> pd.DataFrame:
        return pd.DataFrame([vars(check) for check in self.checks])

    def summary_line(self, currency: str) -> str:
        """One sentence stating the reconciliation's result."""
        if self.reconciled:
            return (
                f"reconciled: the statements agree with the ledger to the cent on all {len(self.checks)} checks "
                f"(largest difference {self.largest_difference:.2g} {currency})"
            )
        failed = [check.name for check in self.checks if not check.ok]
        return (
            f"NOT reconciled: {len(failed)} of {len(self.checks)} checks differ by a cent or more: {'; '.join(failed)}"
        )


def build_statements(books: EpisodeBooks) -> Statements:
    """The statements of ``books`` with their reconciliation (:func:`reconcile`)."""
    statements = Statements(
        income_statement(books), balance_sheet(books), cash_flow(books), inventory_rollforward(books)
    )
    statements.checks = reconcile(books, statements)
    return statements


# --------------------------------------------------------------------------- files
def _present(frame: pd.DataFrame, exact: tuple[str, ...] = ()) -> pd.DataFrame:
    """Money columns rounded to cents, units to 6 decimals (presentation only); ``exact`` columns kept."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype.kind != "f" or column in exact:
            continue
        out[column] = out[column].round(6 if column.endswith("_units") else 2) + 0.0  # + 0.0: no −0
    return out


def statement_tables(reported: list[tuple[str, int, Statements]]) -> dict[str, pd.DataFrame]:
    """The statements of several policies and episodes stacked, with ``policy`` and ``episode`` columns."""
    tables: dict[str, list[pd.DataFrame]] = {name: [] for name in STATEMENT_FILES}
    for policy, episode, statements in reported:
        for name in STATEMENT_FILES:
            frame = statements.reconciliation() if name == "reconciliation" else getattr(statements, name)
            frame = frame.copy()
            frame.insert(0, "episode", episode)
            frame.insert(0, "policy", policy)
            tables[name].append(frame)
    return {name: pd.concat(frames, ignore_index=True) for name, frames in tables.items()}


def summary(reported: list[tuple[str, int, Statements]], currency: str) -> dict:
    """The JSON summary: per policy and episode the headline figures and the reconciliation."""
    entries = []
    for policy, episode, statements in reported:
        income = statements.income_statement.set_index("line")["amount"]
        sheet = statements.balance_sheet.set_index("line")["amount"]
        flows = statements.cash_flow
        entries.append(
            {
                "policy": policy,
                "episode": episode,
                "revenue": float(income["revenue"]),
                "gross_margin": float(income["gross margin"]),
                "net_profit": float(income["net profit"]),
                "total_assets": float(sheet["total assets"]),
                "closing_cash": float(flows["closing_cash"].iloc[-1]),
                "minimum_cash_over_buffer": float(np.nanmin(flows["cash_over_buffer"].iloc[:-1].to_numpy(float)))
                if len(flows) > 1 and np.isfinite(flows["cash_over_buffer"].iloc[:-1].to_numpy(float)).any()
                else None,
                "reconciled": statements.reconciled,
                "largest_difference": statements.largest_difference,
                "reconciliation": statements.summary_line(currency),
                "checks": [vars(check) for check in statements.checks],
            }
        )
    return {
        "currency": currency,
        "tolerance": CENT_TOLERANCE,
        "reconciled": all(entry["reconciled"] for entry in entries),
        "statements": entries,
    }


def write_statement_files(reported: list[tuple[str, int, Statements]], folder: Path, currency: str) -> list[Path]:
    """Write the CSVs, the workbook and the JSON summary into ``folder`` (which exists)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    tables = statement_tables(reported)
    written = []
    for name, file in STATEMENT_FILES.items():
        path = folder / file
        _present(tables[name], exact=("difference",) if name == "reconciliation" else ()).to_csv(path, index=False)
        written.append(path)
    info = summary(reported, currency)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Reconciliation"
    sheet.append([f"Financial statements — money in {currency}, rounded to cents; units as simulated"])
    for entry in info["statements"]:
        sheet.append([f"{entry['policy']} · episode {entry['episode']}: {entry['reconciliation']}"])
    sheet.append([])
    frame = _present(tables["reconciliation"], exact=("difference",))
    sheet.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        sheet.append([_cell(value) for value in row])
    sheet["A1"].font = Font(bold=True)
    for name in ("income_statement", "balance_sheet", "cash_flow", "inventory_rollforward"):
        frame = _present(tables[name])
        ws = workbook.create_sheet(name.replace("_", " ").title()[:31])
        ws.append(list(frame.columns))
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in frame.itertuples(index=False):
            ws.append([_cell(value) for value in row])
        for column, header in zip(ws.columns, frame.columns, strict=True):
            numeric = frame[header].dtype.kind == "f"
            width = max(len(str(header)), *(len(str(c.value)) for c in column)) + 2
            ws.column_dimensions[column[0].column_letter].width = min(width, 48)
            if numeric:
                for cell in column[1:]:
                    cell.number_format = "#,##0.000000" if header.endswith("_units") else "#,##0.00"
        ws.freeze_panes = "A2"
    from invalloc.workbooks import save_workbook

    path = save_workbook(workbook, folder / WORKBOOK_FILE)
    written.append(path)
    path = folder / SUMMARY_FILE
    path.write_text(json.dumps(_json_ready(info), indent=2), encoding="utf-8")
    written.append(path)
    return written


def _cell(value):
    if isinstance(value, float | np.floating) and not math.isfinite(float(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_ready(value):
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    return value


def output_dir_problems(folder: Path, option: str) -> list[str]:
    """Why ``folder`` cannot receive output files (checked before any run); empty if it can.

    It may be missing (then created, its parent must exist) or a folder; not a file.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        return [f"{option} {folder}: is a file, not a folder"]
    parent = folder.resolve().parent
    if not folder.exists() and not parent.is_dir():
        return [f"{option} {folder}: parent folder {parent} does not exist"]
    if not os.access(folder if folder.exists() else parent, os.W_OK | os.X_OK):
        return [f"{option} {folder}: folder is not writable"]
    return []


def write_atomically(folder: Path, fill) -> list[Path]:
    """Build the files in a temporary sibling folder with ``fill(staging)``, then move them into ``folder``.

    Files already in ``folder`` with other names are kept; nothing is half-written.
    """
    folder = Path(folder)
    parent = folder.resolve().parent
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=parent))
    try:
        written = fill(staging)
        folder.mkdir(exist_ok=True)
        moved = []
        for path in written:
            target = folder / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            moved.append(target)
        return moved
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_statements(reported: list[tuple[str, int, Statements]], folder: Path, currency: str) -> list[Path]:
    """Write the statements of every (policy, episode) into ``folder``: a CSV per statement, the
    reconciliation as CSV, one workbook (``statements.xlsx``, a sheet per statement) and a JSON
    summary (``statements.json``, with ``reconciled``). Returns the files written."""
    return write_atomically(folder, lambda staging: write_statement_files(reported, staging, currency))


__all__ = [
    "CENT_TOLERANCE",
    "BookedSimulator",
    "Check",
    "EpisodeBooks",
    "Statements",
    "balance_sheet",
    "build_statements",
    "cash_flow",
    "income_statement",
    "inventory_rollforward",
    "output_dir_problems",
    "reconcile",
    "summary",
    "write_atomically",
    "write_statements",
]
