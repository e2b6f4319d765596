"""Receiving: DCs put away what arrives this period, one cost layer per DC × SKU."""

from __future__ import annotations

from numba import njit

from invalloc.sim.kernels.cost_layers import NEVER, make_room, receive_layer
from invalloc.sim.kernels.ledger import IN_TRANSIT, INVENTORY, post


@njit(cache=True, error_model="numpy", nogil=True)
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
    expires = transit_expires[slot]
    if not make_room(layer_qty, layer_cost, layer_expires, used, units):
        return -1.0
    # The arrivals' unit costs, layers and stock, the value received summed in DC × SKU order.
    total = 0.0
    for d in range(n_loc):
        for s in range(n_sku):
            q = units[d, s]
            cost = value[d, s] / q if q > 0.0 else 0.0
            unit_cost[d, s] = cost
            total += value[d, s]
            if not q <= 0.0:
                expiry = expires[d, s]
                receive_layer(layer_qty, layer_cost, layer_expires, used, d, s, q, cost, expiry, weighted_average)
            if q > 0.0:
                on_hand[d, s] += q
    # The slot emptied, and what is still in transit recounted rather than subtracted: a huge
    # shipment would otherwise leave a floating-point residue behind once it has arrived.
    ring = transit_units.shape[0]
    for d in range(n_loc):
        arrived, arrived_value, arrived_expires, in_transit = units[d], value[d], expires[d], inbound[d]
        for s in range(n_sku):
            arrived[s] = 0.0
            arrived_value[s] = 0.0
            arrived_expires[s] = NEVER
        for s in range(n_sku):
            in_transit[s] = 0.0
        for r in range(ring):
            planned = transit_units[r, d]
            for s in range(n_sku):
                in_transit[s] += planned[s]
    post(balance, INVENTORY, IN_TRANSIT, total)
    return total


@njit(cache=True, error_model="numpy", nogil=True)
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
