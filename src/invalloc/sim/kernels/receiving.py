"""Receiving: DCs put away what arrives this period, one cost layer per DC × SKU."""

from __future__ import annotations

from numba import njit

from invalloc.sim.kernels.cost_layers import NEVER, receive_layers
from invalloc.sim.kernels.ledger import IN_TRANSIT, INVENTORY, post


@njit(cache=True, error_model="numpy")
def receive_arrivals(
    slot,
    transit_units,
    transit_value,
    transit_expires,
    layer_qty,
    layer_cost,
    layer_expires,
    used,
    on_hand,
    inbound,
    weighted_average,
    unit_cost,
    balance,
):
    """Put away everything in ring slot ``slot`` and book it into inventory.

    Returns its value, or −1.0 (nothing changed) if the layers need more slots.
    """
    n_loc, n_sku = on_hand.shape
    units = transit_units[slot]
    value = transit_value[slot]
    total = 0.0
    for d in range(n_loc):
        for s in range(n_sku):
            q = units[d, s]
            unit_cost[d, s] = value[d, s] / q if q > 0.0 else 0.0
            total += value[d, s]
    if not receive_layers(
        layer_qty, layer_cost, layer_expires, used, units, unit_cost, transit_expires[slot], weighted_average
    ):
        return -1.0
    for d in range(n_loc):
        for s in range(n_sku):
            if units[d, s] > 0.0:
                on_hand[d, s] += units[d, s]
            units[d, s] = 0.0
            value[d, s] = 0.0
            transit_expires[slot, d, s] = NEVER
    # Recount what is still in transit rather than subtracting: a huge shipment would
    # otherwise leave a floating-point residue behind once it has arrived.
    for d in range(n_loc):
        for s in range(n_sku):
            remaining = 0.0
            for r in range(transit_units.shape[0]):
                remaining += transit_units[r, d, s]
            inbound[d, s] = remaining
    post(balance, INVENTORY, IN_TRANSIT, total)
    return total


@njit(cache=True, error_model="numpy")
def put_away(ep, slot):
    """:func:`receive_arrivals` of ring slot ``slot``; −1.0 (nothing changed) if the layers need more slots."""
    return receive_arrivals(
        slot,
        ep.transit_units,
        ep.transit_value,
        ep.transit_expires,
        ep.layer_qty,
        ep.layer_cost,
        ep.layer_expires,
        ep.layer_used,
        ep.on_hand,
        ep.inbound,
        ep.weighted_average,
        ep.receipt_unit_cost,
        ep.balance,
    )
