"""Transfers between DCs: stock leaves its source DC at FIFO cost and travels to its destination."""

from __future__ import annotations

import numpy as np
from numba import njit

from invalloc.sim.kernels.cost_layers import issue_outbound
from invalloc.sim.kernels.ledger import CASH, IN_TRANSIT, INVENTORY, post


@njit(cache=True, error_model="numpy", nogil=True)
def put_in_transit(
    slots, destinations, units, value, expires, transit_units, transit_value, transit_expires, inbound, flows_into
):
    """Shipments of L lanes (L, S) join the ring slot of their arrival period at their destination DC."""
    n_lanes, n_sku = units.shape
    for lane in range(n_lanes):
        r = slots[lane]
        d = destinations[lane]
        for s in range(n_sku):
            q = units[lane, s]
            if q <= 0.0:
                continue
            transit_units[r, d, s] += q
            transit_value[r, d, s] += value[lane, s]
            if expires[lane, s] < transit_expires[r, d, s]:
                transit_expires[r, d, s] = expires[lane, s]
            inbound[d, s] += q
            flows_into[d, s] += q


@njit(cache=True, error_model="numpy", nogil=True)
def dispatch_transfers(
    transfers,
    transfer_source,
    transfer_destination,
    shipping_cost,
    leads,
    period,
    layer_qty,
    layer_cost,
    layer_expires,
    used,
    on_hand,
    flows_out,
    transit_units,
    transit_value,
    transit_expires,
    inbound,
    flows_into,
    lane_value,
    balance,
):
    """Transfers (X, S) leave their source DCs at FIFO cost and go in transit to their destinations.

    Freight is capitalised into the goods' value (IAS 2.10); writes each lane's value (X, S).
    Returns (cost of the goods moved, freight), money.
    """
    n_lanes, n_sku = transfers.shape
    cost = np.empty((n_lanes, n_sku))
    expires = np.empty((n_lanes, n_sku), dtype=np.int64)
    issue_outbound(
        transfers, transfer_source, layer_qty, layer_cost, layer_expires, used, on_hand, flows_out, cost, expires
    )
    ring = transit_units.shape[0]
    slots = np.empty(n_lanes, dtype=np.int64)
    goods = 0.0
    freight = 0.0
    for x in range(n_lanes):
        slots[x] = (period + leads[x]) % ring
        for s in range(n_sku):
            lane_freight = transfers[x, s] * shipping_cost[x]
            lane_value[x, s] = cost[x, s] + lane_freight
            goods += cost[x, s]
            freight += lane_freight
    put_in_transit(
        slots,
        transfer_destination,
        transfers,
        lane_value,
        expires,
        transit_units,
        transit_value,
        transit_expires,
        inbound,
        flows_into,
    )
    post(balance, IN_TRANSIT, INVENTORY, goods)
    post(balance, IN_TRANSIT, CASH, freight)
    return goods, freight


@njit(cache=True, error_model="numpy", nogil=True)
def send_transfers(ep, transfers, leads, period):
    """:func:`dispatch_transfers` on the episode's state; writes ``ep.transfer_value``."""
    return dispatch_transfers(
        transfers,
        ep.transfer_source,
        ep.transfer_destination,
        ep.transfer_shipping_cost,
        leads,
        period,
        ep.layer_qty,
        ep.layer_cost,
        ep.layer_expires,
        ep.layer_used,
        ep.on_hand,
        ep.flows_out,
        ep.transit_units,
        ep.transit_value,
        ep.transit_expires,
        ep.inbound,
        ep.flows_into,
        ep.transfer_value,
        ep.balance,
    )
