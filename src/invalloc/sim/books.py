"""Accounting-grade books: a double-entry ledger and inventory cost layers.

Inventory is valued per ASC 330 / IAS 2: each receipt into a DC creates a cost layer
(quantity, unit cost, expiry period); issues are taken first-in first-out. Under the
weighted-average method the layers still carry quantities and expiry in receipt order,
but every layer of a DC × SKU carries the moving average unit cost. At each period
close, layers whose unit cost exceeds the net realisable value are written down
(lower of cost and NRV) and expired layers are written off.

The ledger uses the sign convention *debit positive*: every posting adds its amount to
the debit account and subtracts it from the credit account, so the trial balance
(the sum of all balances) is zero whenever the books are consistent.
"""

from __future__ import annotations

import numpy as np

from invalloc.sim import kernels
from invalloc.sim.accounts import EXPENSE_ACCOUNTS, INCOME_ACCOUNTS, Account
from invalloc.sim.kernels import NEVER

__all__ = ["Account", "CostLayers", "Ledger", "NEVER"]

#: Accounts in the chart (rows of the balance vector).
N_ACCOUNTS = len(Account)
#: 1 for profit-and-loss accounts: profit = −(their net debits).
PROFIT_AND_LOSS = np.zeros(N_ACCOUNTS)
PROFIT_AND_LOSS[list(INCOME_ACCOUNTS + EXPENSE_ACCOUNTS)] = 1.0


class Ledger:
    """Account balances (debit positive, shape (len(Account),)) and this period's movements.

    The compiled simulator steps post straight into :attr:`balance`
    (:func:`invalloc.sim.kernels.post`); Python code uses :meth:`post`.
    """

    def __init__(self) -> None:
        self.balance = np.zeros(N_ACCOUNTS)
        self.period_start = np.zeros(N_ACCOUNTS)

    def post(self, debit: Account, credit: Account, amount: float) -> None:
        """Record ``amount`` (money) debited to one account and credited to another."""
        if amount:
            balance = self.balance
            balance[debit] += amount
            balance[credit] -= amount

    def start_period(self) -> None:
        self.period_start[:] = self.balance

    def trial_balance(self) -> float:
        """Sum of all balances; zero (to rounding) when every posting balanced."""
        return float(self.balance.sum())

    def movement(self, account: Account) -> float:
        """This period's net debit to ``account`` (expenses positive, revenue negative)."""
        return float(self.balance[account] - self.period_start[account])

    def period_profit(self) -> float:
        """Accrual profit of the current period: revenue − expenses."""
        return -float((self.balance - self.period_start) @ PROFIT_AND_LOSS)


class CostLayers:
    """Cost layers per DC × SKU, in receipt order.

    Arrays have shape (D, S, K): ``quantity`` (units), ``unit_cost`` (money per unit) and
    ``expires`` (first period in which the units are expired); ``used`` (D, S) counts the
    slots in use. Empty layers are dropped when a DC × SKU runs out of slots, and ``K``
    doubles when that is not enough. The loops are compiled (:mod:`invalloc.sim.kernels`).
    """

    def __init__(self, n_locations: int, n_skus: int, weighted_average: bool, slots: int = 8) -> None:
        self.weighted_average = weighted_average
        self.quantity = np.zeros((n_locations, n_skus, slots))
        self.unit_cost = np.zeros((n_locations, n_skus, slots))
        self.expires = np.full((n_locations, n_skus, slots), NEVER, dtype=np.int64)
        self.used = np.zeros((n_locations, n_skus), dtype=np.int64)
        self._scratch = np.zeros((n_locations, n_skus))

    # -- queries -------------------------------------------------------------------------
    def on_hand(self) -> np.ndarray:
        """Units per DC × SKU, shape (D, S)."""
        return self.quantity.sum(axis=2)

    def value(self) -> float:
        """Carrying value of all layers (money)."""
        return float(np.sum(self.quantity * self.unit_cost))

    # -- movements -----------------------------------------------------------------------
    def receive(self, quantity: np.ndarray, unit_cost: np.ndarray, expires: np.ndarray) -> None:
        """Add one layer per DC × SKU with ``quantity > 0`` (arrays of shape (D, S))."""
        while not kernels.receive_layers(
            self.quantity, self.unit_cost, self.expires, self.used, quantity, unit_cost, expires, self.weighted_average
        ):
            self.grow()

    def receive_arrivals(
        self,
        slot: int,
        units: np.ndarray,
        value: np.ndarray,
        expires: np.ndarray,
        on_hand: np.ndarray,
        inbound: np.ndarray,
        balance: np.ndarray,
    ) -> float:
        """Put away ring slot ``slot`` of goods in transit (R, D, S), booked on the ledger ``balance``.

        Returns the value received (money).
        """
        while True:
            received = kernels.receive_arrivals(
                slot,
                units,
                value,
                expires,
                self.quantity,
                self.unit_cost,
                self.expires,
                self.used,
                on_hand,
                inbound,
                self.weighted_average,
                self._scratch,
                balance,
            )
            if received >= 0.0:
                return received
            self.grow()

    def issue(self, quantity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Take ``quantity`` (D, S) units first-in first-out from every DC × SKU at once.

        Returns the cost of the units taken (D, S) and their earliest expiry period (D, S).
        The caller guarantees ``quantity`` ≤ on hand.
        """
        cost = np.zeros(quantity.shape)
        expires = np.empty(quantity.shape, dtype=np.int64)
        kernels.fifo_issue(self.quantity, self.unit_cost, self.expires, self.used, quantity, cost, expires)
        return cost, expires

    def write_down_to(self, net_realisable_value: np.ndarray) -> float:
        """Lower of cost and NRV (NRV per SKU, shape (S,)); returns the write-down (money)."""
        return float(kernels.write_down_layers(self.quantity, self.unit_cost, self.used, net_realisable_value))

    def expire(self, period: int) -> tuple[np.ndarray, float]:
        """Remove layers expired at ``period``; returns units (D, S) and cost written off."""
        units = np.zeros(self.used.shape)
        cost = kernels.expire_layers(self.quantity, self.unit_cost, self.expires, self.used, period, units)
        return units, cost

    def grow(self) -> None:
        """Double the layer slots of every DC × SKU."""
        slots = self.quantity.shape[2]
        pad = ((0, 0), (0, 0), (0, slots))
        self.quantity = np.pad(self.quantity, pad)
        self.unit_cost = np.pad(self.unit_cost, pad)
        self.expires = np.pad(self.expires, pad, constant_values=NEVER)
