"""Customers: allocations capped, demand served tier by tier, goods issued, shipped, delivered
and invoiced."""

from __future__ import annotations

import numpy as np
from numba import njit

from invalloc.sim.kernels.cost_layers import issue_from_dcs
from invalloc.sim.kernels.dues import RECEIVABLES_BOOK, book_due
from invalloc.sim.kernels.ledger import (
    CASH,
    COST_OF_GOODS_SOLD,
    IN_TRANSIT,
    INVENTORY,
    RECEIVABLES,
    REVENUE,
    SHIPPING,
    post,
)
from invalloc.sim.kernels.rules import ALLOCATE, limit_allocations


@njit(cache=True, error_model="numpy", nogil=True)
def serve_customers(
    new_demand,
    backlog,
    lost_sales,
    contract_first,
    min_fill_rate,
    tier_penalty,
    sku_integer,
    allocations,
    on_hand,
    reserve,
    reserve_tiers,
    tier_order,
    tier_channel,
    lane_start,
    lane_index,
    sales_location,
    served,
    served_new,
    short,
    shipped,
    short_penalty,
):
    """Serve this period's demand plus backlog, tier by tier, from the DCs' stock.

    Tiers are served in ``tier_order``, each from its channel's sales lanes in lane order
    (``lane_index[lane_start[c]:lane_start[c+1]]``) within the lanes' allocations (A, S).
    With ``contract_first`` every tier first gets its contractual minimum (min fill rate ×
    wanted, whole units rounded up), then the rest by priority. Reserve stock (D, S) is
    only for the tiers marked in ``reserve_tiers`` (D, T).

    Writes ``served``, ``served_new`` (served out of this period's demand, after backlog),
    ``short`` (T, S) and ``shipped`` (A, T, S); updates ``backlog`` (T, S) in place (zero
    under lost sales), and ``short_penalty`` (T, S): the penalty for the units short (money).
    """
    n_tier, n_sku = new_demand.shape
    reserve_left = np.minimum(reserve, on_hand)
    free = on_hand - reserve_left
    allocation_left = allocations.copy()
    need = np.empty(n_sku)  # units tier t still needs from its channel's next lanes, per SKU
    for t in range(n_tier):
        for s in range(n_sku):
            served[t, s] = 0.0
    for p in range(2):
        if p == 0 and not contract_first:
            continue
        for t in tier_order:
            if p == 0 and min_fill_rate[t] <= 0.0:
                continue  # no contract minimum for this tier
            c = tier_channel[t]
            first_lane = lane_start[c]
            demand, owed = new_demand[t], backlog[t]
            # Lane by lane, every SKU: what one SKU takes from a lane depends only on that SKU's
            # earlier lanes, so the SKUs run innermost over contiguous rows.
            for j in range(first_lane, lane_start[c + 1]):
                a = lane_index[j]
                d = sales_location[a]
                from_reserve = reserve_tiers[d, t]
                lane_room, lane_shipped, tier_served = allocation_left[a], shipped[a, t], served[t]
                dc_free, dc_reserve = free[d], reserve_left[d]
                for s in range(n_sku):
                    if j == first_lane:
                        # What the tier wants (demand plus backlog; the contract minimum first,
                        # whole units rounded up), less what it has been served.
                        target = demand[s] + owed[s]
                        if p == 0:
                            target = min_fill_rate[t] * target
                            if sku_integer[s]:
                                target = np.ceil(target - 1e-9)
                        units = target - tier_served[s]
                    else:
                        units = need[s]
                    if units <= 0.0:
                        need[s] = units
                        continue  # served in full by earlier lanes (or nothing wanted)
                    room = lane_room[s]
                    take = min(units, room, dc_free[s])
                    dc_free[s] -= take
                    if from_reserve:
                        extra = min(units - take, room - take, dc_reserve[s])
                        dc_reserve[s] -= extra
                        take += extra
                    lane_room[s] -= take
                    tier_served[s] += take
                    lane_shipped[s] += take
                    need[s] = units - take
    for t in range(n_tier):
        for s in range(n_sku):
            wanted = new_demand[t, s] + backlog[t, s]
            short[t, s] = wanted - served[t, s]
            served_new[t, s] = max(served[t, s] - backlog[t, s], 0.0)
            short_penalty[t, s] = tier_penalty[t] * short[t, s]
            backlog[t, s] = 0.0 if lost_sales else short[t, s]


@njit(cache=True, error_model="numpy", nogil=True)
def dispatch_sales(
    shipped,
    lane_tiers,
    tier_price,
    sales_location,
    shipping_cost,
    slots,
    layer_qty,
    layer_cost,
    layer_expires,
    used,
    on_hand,
    flows_out,
    delivery_units,
    delivery_cost,
    delivery_revenue,
    goods_cost,
):
    """Issue units shipped per sales lane and tier (A, T, S) at FIFO cost and send them to customers.

    Only the tiers of each lane's channel (``lane_tiers`` (A, T) True) can have shipped
    anything; the others are all zero and skipped. Writes the cost of the goods per lane
    ``goods_cost`` (A, S), money. Returns (freight, sales value), money.
    """
    n_lanes, n_tiers, n_sku = shipped.shape
    lane_units = np.zeros((n_lanes, n_sku))
    freight = 0.0
    sales_value = 0.0
    for a in range(n_lanes):
        revenue = 0.0
        units = 0.0  # the lane's units, summed in SKU order
        units_row = lane_units[a]
        last = -1  # the lane's last tier: its pass completes each SKU's units, and sums them
        for t in range(n_tiers):
            if lane_tiers[a, t]:
                last = t
        for t in range(n_tiers):
            if not lane_tiers[a, t]:
                continue
            tier_shipped, price = shipped[a, t], tier_price[t]
            if t == last:
                for s in range(n_sku):
                    q = tier_shipped[s]
                    if q > 0.0:
                        units_row[s] += q
                        revenue += q * price[s]
                    units += units_row[s]
            else:
                for s in range(n_sku):
                    q = tier_shipped[s]
                    if q > 0.0:
                        units_row[s] += q
                        revenue += q * price[s]
        freight += units * shipping_cost[a]
        delivery_revenue[slots[a], a] += revenue
        sales_value += revenue
    n_loc = on_hand.shape[0]
    dc_cost = np.empty((n_loc, n_sku))
    dc_expires = np.empty((n_loc, n_sku), dtype=np.int64)
    outbound = issue_from_dcs(
        lane_units, sales_location, layer_qty, layer_cost, layer_expires, used, on_hand, flows_out, dc_cost, dc_expires
    )
    # Each lane's share of its DC's FIFO cost, in proportion to its units (as issue_outbound).
    for a in range(n_lanes):
        d = sales_location[a]
        r = slots[a]
        units_row, issued, issued_cost = lane_units[a], outbound[d], dc_cost[d]
        to_customers, to_customers_cost = delivery_units[r, d], delivery_cost[r, d]
        cost_row = goods_cost[a]
        for s in range(n_sku):
            q = units_row[s]
            lane_cost = issued_cost[s] * q / issued[s] if q > 0.0 else 0.0
            to_customers[s] += q
            to_customers_cost[s] += lane_cost
            cost_row[s] = lane_cost
    return freight, sales_value


@njit(cache=True, error_model="numpy", nogil=True)
def take_deliveries(slot, delivery_units, delivery_cost, delivery_revenue, revenue_by_lane):
    """Empty ring slot ``slot`` of goods reaching customers (its cost of the goods read
    first: :func:`three_totals`); writes revenue per lane (A,).

    Returns the revenue, money.
    """
    revenue = 0.0
    for a in range(delivery_revenue.shape[1]):
        revenue_by_lane[a] = delivery_revenue[slot, a]
        revenue += delivery_revenue[slot, a]
        delivery_revenue[slot, a] = 0.0
    units = delivery_units[slot]
    goods = delivery_cost[slot]
    for d in range(units.shape[0]):
        for s in range(units.shape[1]):
            units[d, s] = 0.0
            goods[d, s] = 0.0
    return revenue


@njit(cache=True, error_model="numpy", nogil=True)
def three_totals(first, second, third):
    """The sums of three C-contiguous arrays, each a running total in its own element order.

    Summed in one loop so that the three chains of additions overlap (each total's additions
    are the same, in the same order, as in a loop of its own).
    """
    x, y, z = first.reshape(-1), second.reshape(-1), third.reshape(-1)
    n_x, n_y, n_z = x.shape[0], y.shape[0], z.shape[0]
    total_x = 0.0
    total_y = 0.0
    total_z = 0.0
    for i in range(max(n_x, n_y, n_z)):
        if i < n_x:
            total_x += x[i]
        if i < n_y:
            total_y += y[i]
        if i < n_z:
            total_z += z[i]
    return total_x, total_y, total_z


@njit(cache=True, error_model="numpy", nogil=True)
def serve_period(ep, new_demand, allocations, leads, period, log, served, served_new, short, executed):
    """The customers' part of a period, booked, on the episode's state: allocations capped by
    what is on hand now (:func:`~invalloc.sim.kernels.rules.limit_allocations`), demand served
    (:func:`serve_customers`), goods issued and shipped (:func:`dispatch_sales`), and what
    reaches customers this period delivered and invoiced; then the allocations as capped
    recorded into the decision's ``executed`` vector (:meth:`FeasibilityLayer.record_allocations`).

    Returns (penalty for units short, sales value shipped, freight, revenue invoiced), money;
    writes ``served``, ``served_new``, ``short`` (T, S), ``ep.shipped`` (A, T, S) and
    ``ep.revenue_by_lane`` (A,), the revenue invoiced per sales lane, each lane's booked as
    a customer payment due after its channel's terms (``ep.receivable_due``).
    """
    backlog, on_hand, balance = ep.backlog, ep.on_hand, ep.balance
    layer_qty, layer_cost, layer_expires, used = ep.layer_qty, ep.layer_cost, ep.layer_expires, ep.layer_used
    delivery_units, delivery_cost, delivery_revenue = ep.delivery_units, ep.delivery_cost, ep.delivery_revenue
    shipped, sku_integer, sales_location = ep.shipped, ep.sku_integer, ep.sales_location
    limit_allocations(
        allocations, ep.sales_has_decision, on_hand, sales_location, ep.sales_share, ep.sales_capacity, sku_integer, log
    )
    lane_tiers = ep.lane_tiers
    # Only a lane's own channel's tiers are ever written (serve_customers): the rest stay zero.
    for a in range(shipped.shape[0]):
        for t in range(shipped.shape[1]):
            if lane_tiers[a, t]:
                for s in range(shipped.shape[2]):
                    shipped[a, t, s] = 0.0
    ring = delivery_units.shape[0]
    slot = period % ring
    slots = (period + leads) % ring
    n_lanes, n_tiers, n_sku = shipped.shape
    short_penalty = np.empty((n_tiers, n_sku))  # per tier × SKU, money
    goods_cost = np.empty((n_lanes, n_sku))  # per lane × SKU, money
    serve_customers(
        new_demand,
        backlog,
        ep.lost_sales,
        ep.contract_first,
        ep.tier_min_fill_rate,
        ep.tier_penalty,
        sku_integer,
        allocations,
        on_hand,
        ep.reserve_quantity,
        ep.reserve_tiers,
        ep.tier_order,
        ep.tier_channel,
        ep.lane_start,
        ep.lane_index,
        sales_location,
        served,
        served_new,
        short,
        shipped,
        short_penalty,
    )
    freight, sales_value = dispatch_sales(
        shipped,
        lane_tiers,
        ep.tier_price,
        sales_location,
        ep.sales_shipping_cost,
        slots,
        layer_qty,
        layer_cost,
        layer_expires,
        used,
        on_hand,
        ep.flows_out,
        delivery_units,
        delivery_cost,
        delivery_revenue,
        goods_cost,
    )
    # The penalty, the goods shipped and the goods delivered, each summed in its arrays' order.
    penalty, goods, cost = three_totals(short_penalty, goods_cost, delivery_cost[slot])
    post(balance, SHIPPING, CASH, freight)
    post(balance, IN_TRANSIT, INVENTORY, goods)
    revenue = take_deliveries(slot, delivery_units, delivery_cost, delivery_revenue, ep.revenue_by_lane)
    post(balance, RECEIVABLES, REVENUE, revenue)
    if revenue != 0.0:
        # Each lane's invoice falls due after its channel's payment terms, booked in lane order.
        revenue_by_lane, terms = ep.revenue_by_lane, ep.lane_payment_periods
        for a in range(revenue_by_lane.shape[0]):
            if revenue_by_lane[a] != 0.0:
                book_due(
                    ep.receivable_due,
                    ep.receivable_amount,
                    ep.due_count,
                    RECEIVABLES_BOOK,
                    period + terms[a],
                    revenue_by_lane[a],
                )
    post(balance, COST_OF_GOODS_SOLD, IN_TRANSIT, cost)
    # The allocations' decisions come in blocks of one sales lane each.
    rules = ep.rules
    block_start, block_kind, block_row, column = rules.block_start, rules.block_kind, rules.block_row, rules.column
    for b in range(block_kind.shape[0]):
        if block_kind[b] == ALLOCATE:
            lane_allocations = allocations[block_row[b]]
            for i in range(block_start[b], block_start[b + 1]):
                executed[i] = lane_allocations[column[i]]
    return penalty, sales_value, freight, revenue
