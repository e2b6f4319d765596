"""Double-entry postings on the ledger's balance vector, from compiled code.

The rows of the balance vector are the chart's accounts (:class:`invalloc.sim.accounts.Account`),
as compile-time constants; the sign convention is *debit positive* (:mod:`invalloc.sim.books`).
"""

from __future__ import annotations

from numba import njit

from invalloc.sim.accounts import Account

# Account rows of the ledger's balance vector, as compile-time constants.
CASH = int(Account.CASH)
RECEIVABLES = int(Account.RECEIVABLES)
INVENTORY = int(Account.INVENTORY)
IN_TRANSIT = int(Account.INVENTORY_IN_TRANSIT)
PAYABLES = int(Account.PAYABLES)
REVENUE = int(Account.REVENUE)
COST_OF_GOODS_SOLD = int(Account.COST_OF_GOODS_SOLD)
HOLDING = int(Account.HOLDING)
SHIPPING = int(Account.SHIPPING)
ORDERING = int(Account.ORDERING)
PENALTIES = int(Account.PENALTIES)
WRITE_DOWNS = int(Account.WRITE_DOWNS)
INTEREST = int(Account.INTEREST)
EQUITY = int(Account.EQUITY)


@njit(cache=True, error_model="numpy", inline="always")
def post(balance, debit, credit, amount):
    """Double entry on the ledger's balance vector (debit positive).

    Inlined where it is called: the accounts are compile-time constants, so numba would
    otherwise compile one ``post`` per pair of accounts.
    """
    balance[debit] += amount
    balance[credit] -= amount
