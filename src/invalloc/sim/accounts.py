"""The chart of accounts of the simulator's double-entry ledger (debit positive)."""

from __future__ import annotations

from enum import IntEnum


class Account(IntEnum):
    CASH = 0  # negative = credit line drawn
    RECEIVABLES = 1
    INVENTORY = 2  # on hand in DCs
    INVENTORY_IN_TRANSIT = 3  # owned, on the way to a DC or a customer
    PAYABLES = 4
    EQUITY = 5
    REVENUE = 6
    COST_OF_GOODS_SOLD = 7
    HOLDING = 8
    SHIPPING = 9
    ORDERING = 10  # fixed cost per purchase order
    PENALTIES = 11  # contractual penalties for units short
    WRITE_DOWNS = 12  # lower of cost and NRV, expiry
    INTEREST = 13  # on credit used


#: Profit-and-loss accounts: income and expenses.
INCOME_ACCOUNTS = (Account.REVENUE,)
EXPENSE_ACCOUNTS = (
    Account.COST_OF_GOODS_SOLD,
    Account.HOLDING,
    Account.SHIPPING,
    Account.ORDERING,
    Account.PENALTIES,
    Account.WRITE_DOWNS,
    Account.INTEREST,
)
