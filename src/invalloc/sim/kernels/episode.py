"""An episode's start (state emptied, opening stock and cash booked) and small scans of its arrays."""

from __future__ import annotations

from numba import njit

from invalloc.sim.kernels.cost_layers import NEVER, receive_layers
from invalloc.sim.kernels.ledger import CASH, EQUITY, INVENTORY, post


@njit(cache=True, error_model="numpy", nogil=True)
def reset_episode(ep, opening_stock, opening_unit_cost, opening_expiry, opening_value, opening_cash):
    """Empty the episode's state arrays in place, then book the opening stock and cash.

    Returns False (the layers hold nothing) if the layers have too few slots for the opening
    stock, as :func:`receive_layers` does.
    """
    # Copied by loops: an array-to-array assignment compiles numba's shape-mismatch message,
    # string formatting included (seconds of the first compile).
    on_hand, flows_into = ep.on_hand, ep.flows_into
    for d in range(on_hand.shape[0]):
        for s in range(on_hand.shape[1]):
            on_hand[d, s] = opening_stock[d, s]
            flows_into[d, s] = opening_stock[d, s]
    ep.inbound[:] = 0.0
    ep.backlog[:] = 0.0
    ep.transit_units[:] = 0.0
    ep.transit_value[:] = 0.0
    ep.transit_expires[:] = NEVER
    ep.delivery_units[:] = 0.0
    ep.delivery_cost[:] = 0.0
    ep.delivery_revenue[:] = 0.0
    ep.flows_out[:] = 0.0
    ep.balance[:] = 0.0
    ep.period_start[:] = 0.0
    ep.layer_qty[:] = 0.0
    ep.layer_cost[:] = 0.0
    ep.layer_expires[:] = NEVER
    ep.layer_used[:] = 0
    ep.receipt_unit_cost[:] = 0.0
    ep.invoices[:] = 0.0
    ep.transfer_value[:] = 0.0
    ep.shipped[:] = 0.0
    ep.revenue_by_lane[:] = 0.0
    if not receive_layers(
        ep.layer_qty,
        ep.layer_cost,
        ep.layer_expires,
        ep.layer_used,
        opening_stock,
        opening_unit_cost,
        opening_expiry,
        ep.weighted_average,
    ):
        return False
    # As Ledger.post: the inventory first, then the cash, each only if not zero.
    if opening_value != 0.0:
        post(ep.balance, INVENTORY, EQUITY, opening_value)
    if opening_cash != 0.0:
        post(ep.balance, CASH, EQUITY, opening_cash)
    return True


@njit(cache=True, nogil=True)
def any_nonzero(array):
    """Whether any entry of a 2-D array is non-zero (``array.any()`` without numpy's reduction set-up)."""
    for row in range(array.shape[0]):
        for column in range(array.shape[1]):
            if array[row, column] != 0:
                return True
    return False


@njit(cache=True, nogil=True)
def any_nonzero_rows(array, rows):
    """Whether any entry in the given ``rows`` (int64 (k,)) of a 2-D array is non-zero
    (``array[rows].any()`` without the copy)."""
    for row in rows:
        for column in range(array.shape[1]):
            if array[row, column] != 0:
                return True
    return False
