"""Inventory valuation: the cost layers of each DC × SKU (receipts, FIFO issues, expiry, NRV).

Each receipt appends a layer (quantity, unit cost, expiry period) to a DC × SKU; issues are
taken first-in first-out; under the weighted-average method every layer carries the moving
average unit cost. Layers are (D, S, K) arrays with ``used`` (D, S) slots filled.
``NEVER`` marks units that do not expire.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NEVER = np.iinfo(np.int64).max // 2


@njit(cache=True, error_model="numpy", nogil=True)
def fifo_issue(layer_qty, layer_cost, layer_expires, used, quantity, out_cost, out_expires):
    """Take ``quantity`` (D, S) units first-in first-out from the cost layers (D, S, K).

    Writes the cost (D, S) and earliest expiry period (D, S) of the units taken; the caller
    guarantees ``quantity`` ≤ on hand.
    """
    n_loc, n_sku, _ = layer_qty.shape
    for d in range(n_loc):
        for s in range(n_sku):
            need = quantity[d, s]
            cost = 0.0
            expires = NEVER
            if need > 0 and used[d, s] == 1 and layer_qty[d, s, 0] > 0.0:
                # One layer, the common case: taken, and dropped if emptied (as the general case
                # below), with selects rather than branches on whether it empties.
                held = layer_qty[d, s, 0]
                take = held if held < need else need
                left = held - take
                cost += take * layer_cost[d, s, 0]
                expires = min(expires, layer_expires[d, s, 0])
                emptied = left <= 0.0
                layer_qty[d, s, 0] = 0.0 if emptied else left
                layer_cost[d, s, 0] = 0.0 if emptied else layer_cost[d, s, 0]
                layer_expires[d, s, 0] = NEVER if emptied else layer_expires[d, s, 0]
                used[d, s] = 0 if emptied else 1
            elif need > 0 and used[d, s] == 2 and 0.0 < layer_qty[d, s, 0] <= need:
                # Two layers, the oldest emptied: the next common case (a receipt a period, sold
                # through in order). As the general case below, written out: the oldest layer
                # taken whole, what is still needed from the next one, then the emptied layers
                # dropped (the next one moved down to the oldest slot if anything is left of it).
                held = layer_qty[d, s, 0]
                cost += held * layer_cost[d, s, 0]
                expires = min(expires, layer_expires[d, s, 0])
                need -= held
                next_held = layer_qty[d, s, 1]
                next_cost = layer_cost[d, s, 1]
                next_expires = layer_expires[d, s, 1]
                if need > 0.0 and next_held > 0.0:
                    take = next_held if next_held < need else need
                    next_held -= take
                    cost += take * next_cost
                    expires = min(expires, next_expires)
                kept = next_held > 0.0
                layer_qty[d, s, 0] = next_held if kept else 0.0
                layer_cost[d, s, 0] = next_cost if kept else 0.0
                layer_expires[d, s, 0] = next_expires if kept else NEVER
                layer_qty[d, s, 1] = 0.0
                layer_cost[d, s, 1] = 0.0
                layer_expires[d, s, 1] = NEVER
                used[d, s] = 1 if kept else 0
            elif need > 0:
                for k in range(used[d, s]):
                    held = layer_qty[d, s, k]
                    if held <= 0.0:
                        continue
                    take = held if held < need else need
                    layer_qty[d, s, k] = held - take
                    cost += take * layer_cost[d, s, k]
                    if layer_expires[d, s, k] < expires:
                        expires = layer_expires[d, s, k]
                    need -= take
                    if need <= 0.0:
                        break
                if layer_qty[d, s, 0] <= 0.0:
                    # Drop the emptied oldest layers so that every loop over layers stays short.
                    _compact_row(layer_qty, layer_cost, layer_expires, used, d, s)
            out_cost[d, s] = cost
            out_expires[d, s] = expires


@njit(cache=True, error_model="numpy", inline="always")
def _compact_row(layer_qty, layer_cost, layer_expires, used, d, s):
    """Drop the empty layers of one DC × SKU, keeping receipt order."""
    kept = 0
    for k in range(used[d, s]):
        if layer_qty[d, s, k] > 0.0:
            if kept != k:
                layer_qty[d, s, kept] = layer_qty[d, s, k]
                layer_cost[d, s, kept] = layer_cost[d, s, k]
                layer_expires[d, s, kept] = layer_expires[d, s, k]
            kept += 1
    for k in range(kept, used[d, s]):
        layer_qty[d, s, k] = 0.0
        layer_cost[d, s, k] = 0.0
        layer_expires[d, s, k] = NEVER
    used[d, s] = kept


@njit(cache=True, error_model="numpy", nogil=True)
def make_room(layer_qty, layer_cost, layer_expires, used, quantity):
    """Whether every DC × SKU receiving ``quantity > 0`` (D, S) has a free layer slot, after
    dropping the empty layers of those that are full."""
    n_loc, n_sku, slots = layer_qty.shape
    # Counted first, in a loop without branches (the compiler vectorises it): usually none is full.
    full = 0
    for d in range(n_loc):
        for s in range(n_sku):
            full += (quantity[d, s] > 0.0) & (used[d, s] >= slots)
    if full == 0:
        return True
    for d in range(n_loc):
        for s in range(n_sku):
            if quantity[d, s] > 0.0 and used[d, s] >= slots:
                _compact_row(layer_qty, layer_cost, layer_expires, used, d, s)
                if used[d, s] >= slots:
                    return False
    return True


@njit(cache=True, error_model="numpy", inline="always")
def receive_layer(layer_qty, layer_cost, layer_expires, used, d, s, quantity, unit_cost, expires, weighted_average):
    """Append one layer to DC ``d`` × SKU ``s``, which has a free slot (:func:`make_room`).

    Under the weighted-average method every layer of the DC × SKU then carries the moving
    average unit cost.
    """
    k = used[d, s]
    cost = unit_cost
    if weighted_average:
        # The units and value of the older layers, then of the new one, summed in layer order
        # (the new layer's figures kept in registers rather than read back).
        units = 0.0
        value = 0.0
        for j in range(k):
            units += layer_qty[d, s, j]
            value += layer_qty[d, s, j] * layer_cost[d, s, j]
        units += quantity
        value += quantity * unit_cost
        cost = value / units if units > 0.0 else 0.0
        for j in range(k):
            layer_cost[d, s, j] = cost
    layer_qty[d, s, k] = quantity
    layer_cost[d, s, k] = cost
    layer_expires[d, s, k] = expires
    used[d, s] = k + 1


@njit(cache=True, error_model="numpy", nogil=True)
def receive_layers(layer_qty, layer_cost, layer_expires, used, quantity, unit_cost, expires, weighted_average):
    """Append one layer per DC × SKU with ``quantity > 0``; False (nothing changed) if slots run out.

    Under the weighted-average method every layer of a DC × SKU then carries the moving
    average unit cost.
    """
    if not make_room(layer_qty, layer_cost, layer_expires, used, quantity):
        return False
    n_loc, n_sku = used.shape
    for d in range(n_loc):
        for s in range(n_sku):
            if quantity[d, s] <= 0.0:
                continue
            receive_layer(
                layer_qty,
                layer_cost,
                layer_expires,
                used,
                d,
                s,
                quantity[d, s],
                unit_cost[d, s],
                expires[d, s],
                weighted_average,
            )
    return True


@njit(cache=True, error_model="numpy", nogil=True)
def issue_from_dcs(
    lane_units, lane_source, layer_qty, layer_cost, layer_expires, used, on_hand, flows_out, cost, expires
):
    """Issue the units leaving each DC on L lanes (L, S) at FIFO cost, out of its stock.

    Writes the cost (D, S) and earliest expiry (D, S) of what each DC issued, and returns the
    units each DC issued (D, S), the lanes' units summed in lane order.
    """
    n_loc, n_sku = on_hand.shape
    outbound = np.zeros((n_loc, n_sku))
    for lane in range(lane_units.shape[0]):
        dc_out, units = outbound[lane_source[lane]], lane_units[lane]
        for s in range(n_sku):
            dc_out[s] += units[s]
    fifo_issue(layer_qty, layer_cost, layer_expires, used, outbound, cost, expires)
    for d in range(n_loc):
        dc_on_hand, dc_flows_out, dc_out = on_hand[d], flows_out[d], outbound[d]
        for s in range(n_sku):
            dc_on_hand[s] -= dc_out[s]
            dc_flows_out[s] += dc_out[s]
    return outbound


@njit(cache=True, error_model="numpy", nogil=True)
def issue_outbound(
    lane_units, lane_source, layer_qty, layer_cost, layer_expires, used, on_hand, flows_out, lane_cost, lane_expires
):
    """Issue the units leaving each DC on L lanes (L, S) at FIFO cost.

    Lanes leaving one DC in the same period share the cost of the units it issued in
    proportion to their units. Writes each lane's cost (L, S) and earliest expiry (L, S).
    """
    n_loc, n_sku = on_hand.shape
    cost = np.zeros((n_loc, n_sku))
    expires = np.empty((n_loc, n_sku), dtype=np.int64)
    outbound = issue_from_dcs(
        lane_units, lane_source, layer_qty, layer_cost, layer_expires, used, on_hand, flows_out, cost, expires
    )
    for lane in range(lane_units.shape[0]):
        d = lane_source[lane]
        for s in range(n_sku):
            q = lane_units[lane, s]
            if q > 0.0:
                lane_cost[lane, s] = cost[d, s] * q / outbound[d, s]
                lane_expires[lane, s] = expires[d, s]
            else:
                lane_cost[lane, s] = 0.0
                lane_expires[lane, s] = NEVER


@njit(cache=True, error_model="numpy", inline="always")
def expire_layer(layer_qty, layer_cost, layer_expires, used, d, s, period, cost):
    """Remove the layers of DC ``d`` × SKU ``s`` whose expiry period is ≤ ``period``.

    Returns (units removed, ``cost`` plus their cost): the cost is a running total, so that
    a loop over DC × SKU adds every layer's cost in the same order as one sum would.
    """
    units = 0.0
    for k in range(used[d, s]):
        q = layer_qty[d, s, k]
        if q > 0.0 and layer_expires[d, s, k] <= period:
            units += q
            cost += q * layer_cost[d, s, k]
            layer_qty[d, s, k] = 0.0
    return units, cost


@njit(cache=True, error_model="numpy", nogil=True)
def expire_layers(layer_qty, layer_cost, layer_expires, used, period, expired_units):
    """Remove layers whose expiry period is ≤ ``period``; writes units (D, S), returns their cost."""
    n_loc, n_sku, _ = layer_qty.shape
    cost = 0.0
    for d in range(n_loc):
        for s in range(n_sku):
            expired_units[d, s], cost = expire_layer(layer_qty, layer_cost, layer_expires, used, d, s, period, cost)
    return cost


@njit(cache=True, error_model="numpy", inline="always")
def write_down_layer(layer_qty, layer_cost, used, d, s, net_realisable_value, amount):
    """Lower of cost and NRV on DC ``d`` × SKU ``s``: layers costing more than the unit
    ``net_realisable_value`` are written down to it. Returns the running total ``amount`` plus
    the write-down (money)."""
    for k in range(used[d, s]):
        if layer_qty[d, s, k] > 0.0 and layer_cost[d, s, k] > net_realisable_value:
            amount += layer_qty[d, s, k] * (layer_cost[d, s, k] - net_realisable_value)
            layer_cost[d, s, k] = net_realisable_value
    return amount


@njit(cache=True, error_model="numpy", nogil=True)
def write_down_layers(layer_qty, layer_cost, used, net_realisable_value):
    """Lower of cost and NRV: layers costing more than the SKU's NRV (S,) are written down to it.

    Returns the write-down (money).
    """
    n_loc, n_sku, _ = layer_qty.shape
    amount = 0.0
    for d in range(n_loc):
        for s in range(n_sku):
            amount = write_down_layer(layer_qty, layer_cost, used, d, s, net_realisable_value[s], amount)
    return amount
