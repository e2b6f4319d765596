"""Money falling due: supplier bills (payables) and customer payments (receivables) by the
period they fall due in, each book kept in the order its due periods were first booked.

A book is two arrays, ``due`` (M,) int64 and ``amount`` (M,) money, whose first ``count``
entries are open: the dict ``{due period: amount}`` the simulator kept before, in the same
order, so that sums over it add the same amounts in the same order (the same bits). An entry
falls due and leaves the book at its period; entries are booked for the period they are made
in or later, so ``M`` = the longest payment term + 2 always has room.
"""

from __future__ import annotations

from numba import njit

from invalloc.sim.kernels.ledger import CASH

#: The books in ``count``: supplier bills, customer payments.
PAYABLES_BOOK = 0
RECEIVABLES_BOOK = 1


@njit(cache=True, nogil=True)
def book_due(due, amount, count, book, period, money):
    """Add ``money`` (not 0) to book ``book``'s entry due in ``period``, opening one at the end if
    there is none (``count`` (books,) holds each book's number of open entries)."""
    n = count[book]
    for i in range(n):
        if due[i] == period:
            amount[i] += money
            return
    due[n] = period
    amount[n] = 0.0 + money  # as a missing dict entry starts at 0.0
    count[book] = n + 1


@njit(cache=True, nogil=True)
def settle_due(due, amount, count, book, period):
    """Remove book ``book``'s entry due in ``period`` and return its money (0.0 if none); the
    entries after it move up one, keeping their order."""
    n = count[book]
    for i in range(n):
        if due[i] == period:
            money = amount[i]
            for j in range(i + 1, n):
                due[j - 1] = due[j]
                amount[j - 1] = amount[j]
            count[book] = n - 1
            return money
    return 0.0


@njit(cache=True, nogil=True)
def due_before(due, amount, count, book, period):
    """Money of book ``book`` due before ``period``, summed in the book's order."""
    total = 0.0
    for i in range(count[book]):
        if due[i] < period:
            total += amount[i]
    return total


@njit(cache=True, nogil=True)
def held_value(ep, period):
    """The value of the purchase orders held for approval (``ep.held_*``), summed in release
    order: the slots from ``period``'s on hold releases ``period`` … ``period`` + slots − 1."""
    releases, values = ep.held_release, ep.held_value
    slots = releases.shape[0]
    committed = 0.0
    for k in range(slots):
        slot = (period + k) % slots
        if releases[slot] >= 0:
            committed += values[slot]
    return committed


@njit(cache=True, nogil=True)
def bills_and_headroom(ep, period, window, credit_line, buffer):
    """(Supplier bills due before ``period + window``, the purchase headroom): money a purchase
    may commit now under the cash rule, cash + credit line − those bills − the orders held for
    approval − the treasury buffer (may be negative)."""
    bills = due_before(ep.payable_due, ep.payable_amount, ep.due_count, PAYABLES_BOOK, period + window)
    headroom = ep.balance[CASH] + credit_line - bills - held_value(ep, period) - buffer
    return bills, headroom


@njit(cache=True, nogil=True)
def money_outlook(ep, period, window, credit_line, buffer, receivables_window):
    """(Cash, :func:`bills_and_headroom`'s two figures, customer payments due before ``period +
    receivables_window``): what the environment's money features read, in one call."""
    bills, headroom = bills_and_headroom(ep, period, window, credit_line, buffer)
    receivables = due_before(
        ep.receivable_due, ep.receivable_amount, ep.due_count, RECEIVABLES_BOOK, period + receivables_window
    )
    return ep.balance[CASH], bills, headroom, receivables
