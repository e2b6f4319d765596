"""Suppliers ship purchase orders: goods go in transit to the DC, invoices become payables."""

from __future__ import annotations

import numpy as np
from numba import njit

from invalloc.sim.kernels.cost_layers import NEVER
from invalloc.sim.kernels.draws import binomial_from_table, load_state, store_state
from invalloc.sim.kernels.dues import PAYABLES_BOOK, book_due
from invalloc.sim.kernels.episode import any_nonzero_rows
from invalloc.sim.kernels.lead_times import draw_lead_times
from invalloc.sim.kernels.ledger import CASH, IN_TRANSIT, ORDERING, PAYABLES, post


@njit(cache=True, error_model="numpy", nogil=True)
def ship_purchases(
    ordered,
    shipped,
    unit_cost,
    shipping_cost,
    fixed_cost,
    leads,
    period,
    shelf_life,
    destinations,
    transit_units,
    transit_value,
    transit_expires,
    inbound,
    flows_into,
    invoices,
    balance,
):
    """Suppliers' shipments (P, S) go in transit; writes each lane's invoice (P,) (goods + fixed cost).

    Freight is capitalised into the goods' value in transit. Returns (goods value, fixed
    ordering cost, freight), money.
    """
    n_lanes, n_sku = shipped.shape
    ring = transit_units.shape[0]
    goods_total = 0.0
    ordering_total = 0.0
    freight_total = 0.0
    for p in range(n_lanes):
        r = (period + leads[p]) % ring
        d = destinations[p]
        goods = 0.0
        units_ordered = 0.0
        for s in range(n_sku):
            units_ordered += ordered[p, s]
            q = shipped[p, s]
            if q <= 0.0:
                continue
            value = q * unit_cost[p, s]
            freight = q * shipping_cost[p]
            goods += value
            freight_total += freight
            transit_units[r, d, s] += q
            transit_value[r, d, s] += value + freight
            expires = period + leads[p] + shelf_life[s] if shelf_life[s] > 0 else NEVER
            if expires < transit_expires[r, d, s]:
                transit_expires[r, d, s] = expires
            inbound[d, s] += q
            flows_into[d, s] += q
        ordering = fixed_cost[p] if units_ordered > 0.0 else 0.0
        invoices[p] = goods + ordering
        goods_total += goods
        ordering_total += ordering
    post(balance, IN_TRANSIT, PAYABLES, goods_total)
    post(balance, ORDERING, PAYABLES, ordering_total)
    post(balance, IN_TRANSIT, CASH, freight_total)
    return goods_total, ordering_total, freight_total


@njit(cache=True, error_model="numpy", nogil=True)
def ship_orders(ep, ordered, shipped, leads, period):
    """:func:`ship_purchases` on the episode's state; writes ``ep.invoices`` and books each
    lane's invoice (if any) as a bill due after the supplier's payment terms, in lane order."""
    goods, ordering, freight = ship_purchases(
        ordered,
        shipped,
        ep.purchase_unit_cost,
        ep.purchase_shipping_cost,
        ep.purchase_fixed_cost,
        leads,
        period,
        ep.shelf_life,
        ep.purchase_location,
        ep.transit_units,
        ep.transit_value,
        ep.transit_expires,
        ep.inbound,
        ep.flows_into,
        ep.invoices,
        ep.balance,
    )
    invoices, terms = ep.invoices, ep.purchase_payment_periods
    for p in range(invoices.shape[0]):
        if invoices[p] != 0.0:
            book_due(ep.payable_due, ep.payable_amount, ep.due_count, PAYABLES_BOOK, period + terms[p], invoices[p])
    return goods, ordering, freight


@njit(cache=True, error_model="numpy", nogil=True)
def draw_shipped_units(state, shipped, units, probabilities, cells, count, lanes, rows, bounds, steps):
    """The drawn part of :func:`partial_shipments`: ``shipped.ravel()[cells[:count]] =
    Generator.binomial(units[:count], probabilities[:count])``, each whole unit arriving with
    its lane's probability, drawn in order from the PCG64 ``state`` of the supply stream
    (:func:`~invalloc.sim.kernels.draws.state_words`).

    ``lanes`` (L,) are the unreliable lanes (rows of ``shipped``) and ``rows``, ``bounds``,
    ``steps`` their probabilities' :func:`~invalloc.sim.kernels.draws.binomial_inversion_tables`.
    """
    n_sku = shipped.shape[1]
    pcg = load_state(state)
    for i in range(count):
        lane = cells[i] // n_sku
        r = 0
        while lanes[r] != lane:
            r += 1
        units_shipped, pcg = binomial_from_table(pcg, units[i], probabilities[i], bounds[r, : rows[r]], steps[r])
        shipped[lane, cells[i] % n_sku] = units_shipped
    store_state(state, pcg)


@njit(cache=True, error_model="numpy", nogil=True)
def partial_shipments(orders, lanes, ratio, integer, shipped, units, probabilities, cells):
    """Units the suppliers ship of ``orders`` (P, S) before the unreliable lanes' draws.

    Writes ``shipped`` (P, S): the orders, except on the unreliable ``lanes`` (rows of
    ``orders``) ``orders × ratio`` (whole-unit SKUs rounded down); and, lane by lane, the
    whole-unit orders whose shipped units are drawn instead: their units (int64), the lane's
    ``ratio`` (the probability that a unit arrives) and flat cells ``lane × S + sku`` of
    ``shipped``. Returns how many (:meth:`invalloc.sim.simulator.Simulator._partial_delivery`).
    """
    n_sku = orders.shape[1]
    for p in range(orders.shape[0]):
        for s in range(n_sku):
            shipped[p, s] = orders[p, s]
    count = 0
    for r in range(lanes.shape[0]):
        p = lanes[r]
        for s in range(n_sku):
            ordered = orders[p, s]
            q = ordered * ratio[r]
            if integer[s]:
                q = np.floor(q)
                if 0.0 < ordered < 2.0**53:
                    units[count] = np.int64(ordered)
                    probabilities[count] = ratio[r]
                    cells[count] = p * n_sku + s
                    count += 1
            shipped[p, s] = q
    return count


@njit(cache=True, error_model="numpy", nogil=True)
def supply_orders(ep, state, orders, period):
    """The suppliers' part of a period in one call, drawing from the supply stream's PCG64
    ``state`` (:func:`~invalloc.sim.kernels.draws.state_words`): what the unreliable lanes
    ship of ``orders`` (P, S) (:func:`partial_shipments`, then :func:`draw_shipped_units`
    into ``ep.partial_shipped``), each lane's lead time
    (:func:`~invalloc.sim.kernels.lead_times.draw_lead_times` into ``ep.purchase_leads``),
    then the shipments sent (:func:`ship_orders`). The draws come in that order, as numpy's
    would: the same numbers as the calls one by one.

    The orders released from approval this period are added to ``orders`` first (into
    ``ep.released_orders``) and leave the ring of held orders. Returns (goods value, fixed
    ordering cost, freight), money, whether orders were released (``ep.released_orders``
    holds all the period's orders) and whether the shipments differ from the orders
    (``ep.partial_shipped`` holds them).
    """
    released = release_orders(ep, orders, period)
    if released:
        orders = ep.released_orders
    shipped = orders
    partial = False
    lanes = ep.unreliable_lanes
    if lanes.shape[0] > 0 and any_nonzero_rows(orders, lanes):
        shipped = ep.partial_shipped
        units, probabilities, cells = ep.partial_units, ep.partial_probabilities, ep.partial_cells
        count = partial_shipments(
            orders, lanes, ep.unreliable_reliability, ep.sku_integer, shipped, units, probabilities, cells
        )
        if count:
            draw_shipped_units(
                state,
                shipped,
                units,
                probabilities,
                cells,
                count,
                lanes,
                ep.reliability_rows,
                ep.reliability_bounds,
                ep.reliability_steps,
            )
        partial = True
    leads = ep.purchase_leads
    draw_lead_times(
        state,
        ep.purchase_lead_fixed,
        ep.purchase_lead_random,
        ep.purchase_lead_values,
        ep.purchase_lead_cumulative,
        ep.purchase_lead_first,
        ep.purchase_lead_total,
        leads,
    )
    goods, ordering, freight = ship_orders(ep, orders, shipped, leads, period)
    return goods, ordering, freight, released, partial


@njit(cache=True, error_model="numpy", nogil=True)
def release_orders(ep, orders, period):
    """If orders held for approval are released this ``period``: ``ep.released_orders`` =
    ``orders`` + them, their slot emptied, and True."""
    releases = ep.held_release
    slot = period % releases.shape[0]
    if releases[slot] != period:
        return False
    held, combined = ep.held_orders[slot], ep.released_orders
    for p in range(orders.shape[0]):
        for s in range(orders.shape[1]):
            combined[p, s] = orders[p, s] + held[p, s]
    releases[slot] = -1
    return True
