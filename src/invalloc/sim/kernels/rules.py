"""The feasibility rules at the decision point: a policy's requests projected onto what can execute.

See :mod:`invalloc.sim.feasibility` for the rules and their order; allocations are capped
again when customers are served (:func:`limit_allocations`), once this period's receipts
are on hand.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Rule rows of the intervention log (count of decisions changed, units removed); the order
# matches ``invalloc.sim.feasibility.RULES``.
INVALID, NON_NEGATIVE, SOURCE_STOCK, LANE_CAPACITY, SUPPLIER_CAPACITY, LOCATION_CAPACITY = 0, 1, 2, 3, 4, 5
PURCHASE_APPROVAL, PURCHASE_BUDGET, CASH_RULE, CHANNEL_SHARE, AVAILABLE_STOCK, MINIMUM_ORDER = 6, 7, 8, 9, 10, 11

ORDER, TRANSFER, ALLOCATE = 0, 1, 2


@njit(cache=True, error_model="numpy", inline="always")
def _whole(value, integer):
    return np.floor(value + 1e-9) if integer else value


# The intervention log is tallied in registers inside a loop over SKUs and written back after
# it (:func:`_tally`): read and written in the loop, the log cannot be kept in a register (it
# might be one of the arrays the loop writes), and the round trips through memory cost about
# ten times the rest of the loop. Each rule's count and units are summed in the same order.


@njit(cache=True, error_model="numpy", inline="always")
def _tally(old, new, count, units):
    """A rule's running (count of decisions changed, units removed) after lowering ``old`` to ``new``."""
    changed = new != old
    return count + (1.0 if changed else 0.0), units + (abs(old - new) if changed else 0.0)


@njit(cache=True, error_model="numpy", inline="always")
def _scale_cell(row, s, factor, integer, count, units):
    """Scale ``row[s]`` by ``factor`` ≤ 1 (whole units rounded down if ``integer``); returns the
    rule's running (count, units) after it (:func:`_tally`)."""
    old = row[s]
    new = _whole(old * factor, integer)
    row[s] = new if new != old else old
    return _tally(old, new, count, units)


@njit(cache=True, error_model="numpy", nogil=True)
def _any_finite(values):
    """Whether any of ``values`` is finite (as ``np.isfinite(values).any()``, without the array)."""
    for value in values.flat:
        if np.isfinite(value):
            return True
    return False


@njit(cache=True, error_model="numpy", nogil=True)
def _any_nonzero(values):
    """Whether any of ``values`` is non-zero (NaN counts; counted without an early exit, which the
    compiler vectorises)."""
    nonzero = 0
    for value in values.flat:
        nonzero += value != 0.0
    return nonzero > 0


@njit(cache=True, error_model="numpy", nogil=True)
def _add_row(start, block, i):
    """``start`` plus row ``i`` of ``block``, added in column order (the sum kept in a register,
    not in the array element it goes to)."""
    total = start
    for s in range(block.shape[1]):
        total += block[i, s]
    return total


@njit(cache=True, error_model="numpy", nogil=True)
def _add_rows_into(totals, block, group):
    """Add each row ``i`` of ``block`` into ``totals[group[i]]``, rows in order and each row's
    SKUs in column order (as :func:`_add_row` row after row). Two consecutive rows of different
    groups are summed side by side in one pass (independent sums, the same additions)."""
    n_rows, n_sku = block.shape
    i = 0
    while i < n_rows:
        g0 = group[i]
        if i + 1 < n_rows and group[i + 1] != g0:
            g1 = group[i + 1]
            t0, t1 = totals[g0], totals[g1]
            for s in range(n_sku):
                t0 += block[i, s]
                t1 += block[i + 1, s]
            totals[g0], totals[g1] = t0, t1
            i += 2
        else:
            totals[g0] = _add_row(totals[g0], block, i)
            i += 1


@njit(cache=True, error_model="numpy", nogil=True)
def _scale_row(block, i, factor, sku_integer, log, rule):
    """Scale row ``i`` of ``block`` (lanes, S) by ``factor`` ≤ 1, whole units rounded down."""
    row = block[i]
    count, units = log[rule, 0], log[rule, 1]
    for s in range(block.shape[1]):
        count, units = _scale_cell(row, s, factor, sku_integer[s], count, units)
    log[rule, 0], log[rule, 1] = count, units


@njit(cache=True, error_model="numpy", nogil=True)
def _order_value(orders, unit_cost, fixed_cost):
    """Value of all purchase orders (P, S): units × cost plus each ordering lane's fixed cost."""
    total = 0.0
    for p in range(orders.shape[0]):
        lane = 0.0
        units = 0.0
        for s in range(orders.shape[1]):
            lane += orders[p, s] * unit_cost[p, s]
            units += orders[p, s]
        if units > 0.0:
            lane += fixed_cost[p]
        total += lane
    return total


@njit(cache=True, error_model="numpy", nogil=True)
def _lanes_value(lane_variable, lane_units, fixed_cost):
    """:func:`_order_value` from each lane's sums already taken: units × cost (P,) and units (P,)."""
    total = 0.0
    for p in range(lane_variable.shape[0]):
        lane = lane_variable[p]
        if lane_units[p] > 0.0:
            lane += fixed_cost[p]
        total += lane
    return total


@njit(cache=True, error_model="numpy", nogil=True)
def _purchase_value(orders, delayed, any_delayed, unit_cost, fixed_cost):
    """Value of the orders plus that of the delayed orders (:func:`_order_value` of each); the
    latter only where some may be non-zero (all-zero orders are worth +0.0, which adds nothing)."""
    value = _order_value(orders, unit_cost, fixed_cost)
    if any_delayed:
        value = value + _order_value(delayed, unit_cost, fixed_cost)
    return value


@njit(cache=True, error_model="numpy", nogil=True)
def _stock_positions(on_hand, inbound):
    """Each DC's stock position (D,): Σ over SKUs of on hand + in transit, added in SKU order.

    Up to four DCs are summed side by side in one pass over the SKUs (independent sums, each
    with its own additions in its own order; rows past the last DC repeat it and are dropped).
    """
    n_loc, n_sku = on_hand.shape
    position = np.empty(n_loc)
    for d0 in range(0, n_loc, 4):
        d1, d2, d3 = min(d0 + 1, n_loc - 1), min(d0 + 2, n_loc - 1), min(d0 + 3, n_loc - 1)
        t0 = t1 = t2 = t3 = 0.0
        for s in range(n_sku):
            t0 += on_hand[d0, s] + inbound[d0, s]
            t1 += on_hand[d1, s] + inbound[d1, s]
            t2 += on_hand[d2, s] + inbound[d2, s]
            t3 += on_hand[d3, s] + inbound[d3, s]
        position[d3], position[d2], position[d1], position[d0] = t3, t2, t1, t0
    return position


@njit(cache=True, error_model="numpy", nogil=True)
def _lane_sums(orders, unit_cost):
    """Each purchase lane's variable value Σ units × unit cost and its units Σ units (P,), each
    added in SKU order; up to four lanes side by side in one pass over the SKUs (as
    :func:`_stock_positions`)."""
    n_lanes, n_sku = orders.shape
    variable = np.empty(n_lanes)
    units = np.empty(n_lanes)
    for p0 in range(0, n_lanes, 4):
        p1, p2, p3 = min(p0 + 1, n_lanes - 1), min(p0 + 2, n_lanes - 1), min(p0 + 3, n_lanes - 1)
        v0 = v1 = v2 = v3 = 0.0
        u0 = u1 = u2 = u3 = 0.0
        for s in range(n_sku):
            v0 += orders[p0, s] * unit_cost[p0, s]
            u0 += orders[p0, s]
            v1 += orders[p1, s] * unit_cost[p1, s]
            u1 += orders[p1, s]
            v2 += orders[p2, s] * unit_cost[p2, s]
            u2 += orders[p2, s]
            v3 += orders[p3, s] * unit_cost[p3, s]
            u3 += orders[p3, s]
        variable[p3], variable[p2], variable[p1], variable[p0] = v3, v2, v1, v0
        units[p3], units[p2], units[p1], units[p0] = u3, u2, u1, u0
    return variable, units


@njit(cache=True, error_model="numpy", nogil=True)
def _finite_non_negative(values):
    """Whether every one of ``values`` (1-D) is finite and ≥ 0 (counted without an early exit,
    which the compiler vectorises: several times faster when they all are)."""
    bad = 0
    for i in range(values.shape[0]):
        value = values[i]
        bad += not (value >= 0.0 and value < np.inf)
    return bad == 0


@njit(cache=True, error_model="numpy", nogil=True)
def _penalty(shortfall, shortfall_penalty, block_start, block_kind):
    """Σ shortfall × penalty over the replenishment decisions, added in decision order.

    Terms of ±0.0 leave the sum as it is (it starts at +0.0), so they are skipped, and the sum
    is taken only when some term is non-zero (counted first, in a loop the compiler vectorises).
    """
    nonzero = 0
    for i in range(shortfall.shape[0]):
        nonzero += shortfall[i] * shortfall_penalty[i] != 0.0
    penalty = 0.0
    if nonzero == 0:
        return penalty
    for b in range(block_kind.shape[0]):
        if block_kind[b] == ALLOCATE:
            continue
        for i in range(block_start[b], block_start[b + 1]):
            cost = shortfall[i] * shortfall_penalty[i]
            if cost != 0.0:
                penalty += cost
    return penalty


@njit(cache=True, error_model="numpy", nogil=True)
def _scale_purchases(orders, delayed, factor, sku_integer, log, rule):
    """Scale the orders and the delayed orders (P, S) by ``factor`` ≤ 1, whole units rounded down."""
    count, units = log[rule, 0], log[rule, 1]
    for p in range(orders.shape[0]):
        order_row, delayed_row = orders[p], delayed[p]
        for s in range(orders.shape[1]):
            count, units = _scale_cell(order_row, s, factor, sku_integer[s], count, units)
            count, units = _scale_cell(delayed_row, s, factor, sku_integer[s], count, units)
    log[rule, 0], log[rule, 1] = count, units


@njit(cache=True, error_model="numpy", nogil=True)
def project(
    flat,
    open_requests,
    block_start,
    block_kind,
    block_row,
    block_first_column,
    column,
    decision_integer,
    sku_integer,
    on_hand,
    inbound,
    reserve,
    transfer_source,
    transfer_destination,
    transfer_capacity,
    released,
    purchase_location,
    purchase_supplier,
    purchase_capacity,
    supplier_capacity,
    location_capacity,
    unit_cost,
    fixed_cost,
    minimum_order,
    approval_limit,
    approval_delays,
    budget,
    headroom,
    shortfall_penalty,
    requested,
    orders,
    delayed,
    transfers,
    allocations,
    executed,
    shortfall,
    log,
):
    """The feasibility layer's projection (see :mod:`invalloc.sim.feasibility`), in place.

    Decisions come in blocks of one kind and lane: block ``b`` is decisions
    ``block_start[b]:block_start[b + 1]`` of kind ``block_kind[b]`` on lane ``block_row[b]``,
    decision ``i`` for SKU ``column[i]`` (SKUs ``block_first_column[b]`` onwards, one after another,
    where that is ≥ 0). ``open_requests`` (n_decisions,) are added to the requests (empty:
    none open). Fills ``requested``, ``executed`` and ``shortfall``
    (n_decisions,; the unexecuted part of each replenishment request), ``orders``/``delayed``
    (P, S), ``transfers`` (X, S), ``allocations`` (A, S; +inf where a lane has no decision) and
    the intervention ``log``. Returns (value of the purchase orders, penalty for the
    shortfalls), money.
    """
    n_sku = sku_integer.shape[0]
    n_loc = on_hand.shape[0]
    no_open = open_requests.shape[0] == 0
    # Sanitise: NaN/inf and negatives become 0; whole units rounded down; open requests added
    # (none given: +0.0 added, as a vector of zeros adds).
    # When every request is finite and non-negative (as a rule policy's are), nothing is
    # logged and the checks are skipped: the same values, in a loop the compiler vectorises.
    if _finite_non_negative(flat):
        if no_open:
            for i in range(flat.shape[0]):
                requested[i] = _whole(flat[i], decision_integer[i]) + 0.0
        else:
            for i in range(flat.shape[0]):
                requested[i] = _whole(flat[i], decision_integer[i]) + open_requests[i]
    else:
        for i in range(flat.shape[0]):
            value = flat[i]
            if not np.isfinite(value):
                log[INVALID, 0] += 1.0
                value = 0.0
            if value < 0.0:
                log[NON_NEGATIVE, 0] += 1.0
                log[NON_NEGATIVE, 1] -= value
                value = 0.0
            requested[i] = _whole(value, decision_integer[i]) + (0.0 if no_open else open_requests[i])
    for b in range(block_kind.shape[0]):
        k = block_kind[b]
        lanes = orders if k == ORDER else transfers if k == TRANSFER else allocations
        r, first, last = block_row[b], block_start[b], block_start[b + 1]
        if block_first_column[b] >= 0:  # consecutive SKUs: a plain copy
            c = block_first_column[b]
            lanes[r, c : c + last - first] = requested[first:last]
        else:
            for i in range(first, last):
                lanes[r, column[i]] = requested[i]

    # Transfers: lane capacity, then the source DC's unreserved stock at the start of the period.
    n_transfer = transfers.shape[0]
    if n_transfer:
        for x in range(n_transfer):
            if transfer_capacity[x] == np.inf:
                continue  # no total exceeds it
            total = 0.0
            for s in range(n_sku):
                total += transfers[x, s]
            if total > transfer_capacity[x]:
                factor = transfer_capacity[x] / total
                _scale_row(transfers, x, factor, sku_integer, log, LANE_CAPACITY)
        outbound = np.zeros((n_loc, n_sku))
        for x in range(n_transfer):
            for s in range(n_sku):
                outbound[transfer_source[x], s] += transfers[x, s]
        count, units = log[SOURCE_STOCK, 0], log[SOURCE_STOCK, 1]
        for x in range(n_transfer):
            d = transfer_source[x]
            row = transfers[x]
            for s in range(n_sku):
                unreserved = max(on_hand[d, s] - reserve[d, s], 0.0)
                if outbound[d, s] > unreserved:
                    factor = unreserved / outbound[d, s]
                    count, units = _scale_cell(row, s, factor, sku_integer[s], count, units)
        log[SOURCE_STOCK, 0], log[SOURCE_STOCK, 1] = count, units

    # Purchase orders: lane capacity, supplier capacity, after the orders released from approval
    # this period, which take their share of both first.
    # With no order released (all zero), what they take sums to +0.0 everywhere: not summed.
    n_purchase = orders.shape[0]
    any_released = _any_nonzero(released)
    for p in range(n_purchase):
        if purchase_capacity[p] == np.inf:
            continue  # no total exceeds it
        total = 0.0
        taken = 0.0
        if any_released:
            for s in range(n_sku):
                total += orders[p, s]
                taken += released[p, s]
        else:
            for s in range(n_sku):
                total += orders[p, s]
        if total > 0.0 and total + taken > purchase_capacity[p]:
            factor = max(purchase_capacity[p] - taken, 0.0) / total
            _scale_row(orders, p, factor, sku_integer, log, LANE_CAPACITY)
    if _any_finite(supplier_capacity):
        per_supplier = np.zeros(supplier_capacity.shape)
        taken_supplier = np.zeros(supplier_capacity.shape)
        for p in range(n_purchase):
            k = purchase_supplier[p]
            for s in range(n_sku):
                per_supplier[k, s] += orders[p, s]
            if any_released:
                for s in range(n_sku):
                    taken_supplier[k, s] += released[p, s]
        # Counted first (no branch per SKU); orders are lowered only where some SKU is over.
        over = 0
        for k in range(per_supplier.shape[0]):
            for s in range(n_sku):
                asked = per_supplier[k, s]
                over += (asked > 0.0) & (asked + taken_supplier[k, s] > supplier_capacity[k, s])
        if over:
            count, units = log[SUPPLIER_CAPACITY, 0], log[SUPPLIER_CAPACITY, 1]
            for p in range(n_purchase):
                k = purchase_supplier[p]
                row = orders[p]
                for s in range(n_sku):
                    if per_supplier[k, s] > 0.0 and per_supplier[k, s] + taken_supplier[k, s] > supplier_capacity[k, s]:
                        factor = max(supplier_capacity[k, s] - taken_supplier[k, s], 0.0) / per_supplier[k, s]
                        count, units = _scale_cell(row, s, factor, sku_integer[s], count, units)
            log[SUPPLIER_CAPACITY, 0], log[SUPPLIER_CAPACITY, 1] = count, units

    # Storage: on hand + in transit + new inbound ≤ the DC's capacity. Transfers are limited by
    # their destination's room first; orders then get what room is left once the final
    # transfers in and out are known, so no later step can push a DC over its capacity.
    if _any_finite(location_capacity):
        room = _stock_positions(on_hand, inbound)
        for d in range(n_loc):
            room[d] = max(location_capacity[d] - room[d], 0.0)
        transfers_in = np.zeros(n_loc)
        _add_rows_into(transfers_in, transfers, transfer_destination)
        for x in range(n_transfer):
            d = transfer_destination[x]
            if transfers_in[d] > room[d]:
                f = room[d] / transfers_in[d]
                _scale_row(transfers, x, f, sku_integer, log, LOCATION_CAPACITY)
        net_transfers = np.zeros(n_loc)
        for x in range(n_transfer):
            into, out_of = transfer_destination[x], transfer_source[x]
            if into == out_of:
                for s in range(n_sku):
                    net_transfers[into] += transfers[x, s]
                    net_transfers[into] -= transfers[x, s]
                continue
            arriving, leaving = net_transfers[into], net_transfers[out_of]
            for s in range(n_sku):
                arriving += transfers[x, s]
                leaving -= transfers[x, s]
            net_transfers[into], net_transfers[out_of] = arriving, leaving
        ordered = np.zeros(n_loc)  # new orders (scalable)
        arriving_released = np.zeros(n_loc)  # orders released from approval (already committed)
        if any_released:
            for p in range(n_purchase):
                d = purchase_location[p]
                new, committed = ordered[d], arriving_released[d]
                for s in range(n_sku):
                    new += orders[p, s]
                    committed += released[p, s]
                ordered[d], arriving_released[d] = new, committed
        else:
            _add_rows_into(ordered, orders, purchase_location)
        for p in range(n_purchase):
            d = purchase_location[p]
            if ordered[d] > 0.0 and ordered[d] + arriving_released[d] + net_transfers[d] > room[d]:
                f = max(room[d] - net_transfers[d] - arriving_released[d], 0.0) / ordered[d]
                _scale_row(orders, p, f, sku_integer, log, LOCATION_CAPACITY)

    # The orders' value (:func:`_purchase_value`) is recomputed only when a rule changed an
    # order since it was last computed (every change is counted in the log): the same
    # number, fewer passes. ``any_delayed``: whether an order may be held for approval (else
    # ``delayed`` is all zero, and so is its value).
    known_value = -1.0
    known_at = -1.0
    any_delayed = False

    # Purchase approval: an order above the value limit is capped, or held for approval.
    if np.isfinite(approval_limit):
        before = _changes(log)
        # Each lane's sums are taken before any lane is changed: a change to lane p alters no other lane.
        lane_variable, lane_units = _lane_sums(orders, unit_cost)
        for p in range(n_purchase):
            variable, units = lane_variable[p], lane_units[p]
            if units <= 0.0 or variable + fixed_cost[p] <= approval_limit:
                continue
            if approval_delays:
                any_delayed = True
                count, units = log[PURCHASE_APPROVAL, 0], log[PURCHASE_APPROVAL, 1]
                order_row, delayed_row = orders[p], delayed[p]
                for s in range(n_sku):
                    old = order_row[s]
                    delayed_row[s] = old
                    count, units = _tally(old, 0.0, count, units)
                    order_row[s] = 0.0 if old != 0.0 else old
                log[PURCHASE_APPROVAL, 0], log[PURCHASE_APPROVAL, 1] = count, units
            else:
                factor = max(approval_limit - fixed_cost[p], 0.0) / variable
                _scale_row(orders, p, factor, sku_integer, log, PURCHASE_APPROVAL)
        if _changes(log) == before:
            # Nothing changed: the value is the lanes' sums just taken, added as _order_value adds them.
            known_value, known_at = _lanes_value(lane_variable, lane_units, fixed_cost), before

    # Purchase budget, then the cash rule: one common scale factor over all orders.
    for rule in (PURCHASE_BUDGET, CASH_RULE):
        limit = budget if rule == PURCHASE_BUDGET else headroom
        if not np.isfinite(limit):
            continue
        changes = _changes(log)
        if known_at == changes:
            total = known_value
        else:
            total = _purchase_value(orders, delayed, any_delayed, unit_cost, fixed_cost)
            known_value, known_at = total, changes
        if total <= limit:
            continue
        fixed = 0.0
        for p in range(n_purchase):
            units = 0.0
            for s in range(n_sku):
                units += orders[p, s] + delayed[p, s]
            if units > 0.0:
                fixed += fixed_cost[p]
        factor = max(limit - fixed, 0.0) / max(total - fixed, 1e-12) if limit > fixed else 0.0
        _scale_purchases(orders, delayed, factor, sku_integer, log, rule)
        any_delayed = any_delayed or not np.isfinite(factor)  # 0 × inf would not stay 0

    # Minimum order quantity: a smaller order is dropped (the nearest feasible quantity below).
    # Counted first (no branch per order); dropped in order only where some order is too small.
    small = 0
    for p in range(n_purchase):
        for s in range(n_sku):
            smallest = minimum_order[p, s] - 1e-9
            small += (0.0 < orders[p, s]) & (orders[p, s] < smallest)
            if any_delayed:
                small += (0.0 < delayed[p, s]) & (delayed[p, s] < smallest)
    if small:
        count, units = log[MINIMUM_ORDER, 0], log[MINIMUM_ORDER, 1]
        for p in range(n_purchase):
            order_row, delayed_row = orders[p], delayed[p]
            for s in range(n_sku):
                old = order_row[s]
                if 0.0 < old < minimum_order[p, s] - 1e-9:
                    count, units = _tally(old, 0.0, count, units)
                    order_row[s] = 0.0
                old = delayed_row[s]
                if any_delayed and 0.0 < old < minimum_order[p, s] - 1e-9:
                    count, units = _tally(old, 0.0, count, units)
                    delayed_row[s] = 0.0
        log[MINIMUM_ORDER, 0], log[MINIMUM_ORDER, 1] = count, units

    # Executed: the final lanes (orders plus those held for approval); shortfall: the
    # replenishment requests' unexecuted part (0 for allocations). One pass per block.
    for b in range(block_kind.shape[0]):
        k = block_kind[b]
        lanes = orders if k == ORDER else transfers if k == TRANSFER else allocations
        r, first, last = block_row[b], block_start[b], block_start[b + 1]
        c = block_first_column[b] - first  # SKU of decision i is c + i where consecutive
        consecutive = block_first_column[b] >= 0
        if k == ALLOCATE:
            for i in range(first, last):
                executed[i] = lanes[r, c + i if consecutive else column[i]]
                shortfall[i] = 0.0
        elif k == ORDER:
            for i in range(first, last):
                s = c + i if consecutive else column[i]
                done = lanes[r, s] + delayed[r, s]
                executed[i] = done
                shortfall[i] = requested[i] - done
        else:
            for i in range(first, last):
                done = lanes[r, c + i if consecutive else column[i]]
                executed[i] = done
                shortfall[i] = requested[i] - done
    penalty = _penalty(shortfall, shortfall_penalty, block_start, block_kind)
    if known_at == _changes(log):
        value = known_value
    else:
        value = _purchase_value(orders, delayed, any_delayed, unit_cost, fixed_cost)
    return value, penalty


@njit(cache=True, error_model="numpy", nogil=True)
def _changes(log):
    """Decisions changed so far by any rule (the log's first column summed)."""
    total = 0.0
    for rule in range(log.shape[0]):
        total += log[rule, 0]
    return total


@njit(cache=True, error_model="numpy", nogil=True)
def limit_allocations(
    allocations, has_decision, available, sales_location, sales_share, sales_capacity, sku_integer, log
):
    """Cap allocations (A, S) by channel share, lane capacity and the stock ``available`` (D, S), in place.

    Lanes without a decision may take all available stock, within the channel share and
    the lane's capacity (no intervention is logged for those structural limits).
    """
    n_lanes, n_sku = allocations.shape
    for a in range(n_lanes):
        d = sales_location[a]
        row, stock_row, share = allocations[a], available[d], sales_share[a]
        if not has_decision[a]:
            for s in range(n_sku):
                stock = stock_row[s]
                row[s] = _whole(share * stock, sku_integer[s]) if share < 1.0 else stock
        else:
            # A cap below the stock is the channel share's, else the stock's.
            share_count, share_units = log[CHANNEL_SHARE, 0], log[CHANNEL_SHARE, 1]
            stock_count, stock_units = log[AVAILABLE_STOCK, 0], log[AVAILABLE_STOCK, 1]
            for s in range(n_sku):
                stock = stock_row[s]
                cap = _whole(share * stock, sku_integer[s]) if share < 1.0 else stock
                old = row[s]
                if old > cap:
                    if cap < stock:
                        share_count, share_units = _tally(old, cap, share_count, share_units)
                    else:
                        stock_count, stock_units = _tally(old, cap, stock_count, stock_units)
                    row[s] = cap
            log[CHANNEL_SHARE, 0], log[CHANNEL_SHARE, 1] = share_count, share_units
            log[AVAILABLE_STOCK, 0], log[AVAILABLE_STOCK, 1] = stock_count, stock_units
        if np.isfinite(sales_capacity[a]):
            lane_total = 0.0
            for s in range(n_sku):
                lane_total += row[s]
            if lane_total > sales_capacity[a]:
                factor = sales_capacity[a] / lane_total
                if has_decision[a]:
                    _scale_row(allocations, a, factor, sku_integer, log, LANE_CAPACITY)
                else:
                    for s in range(n_sku):
                        row[s] = _whole(row[s] * factor, sku_integer[s])
    total = np.zeros(available.shape)
    for a in range(n_lanes):
        if has_decision[a]:
            for s in range(n_sku):
                total[sales_location[a], s] += allocations[a, s]
    count, units = log[AVAILABLE_STOCK, 0], log[AVAILABLE_STOCK, 1]
    for a in range(n_lanes):
        if not has_decision[a]:
            continue
        d = sales_location[a]
        row, dc_total, dc_stock = allocations[a], total[d], available[d]
        for s in range(n_sku):
            if dc_total[s] > dc_stock[s]:
                factor = dc_stock[s] / dc_total[s]
                count, units = _scale_cell(row, s, factor, sku_integer[s], count, units)
    log[AVAILABLE_STOCK, 0], log[AVAILABLE_STOCK, 1] = count, units


@njit(cache=True, error_model="numpy", nogil=True)
def _overwritten(kind, row, n_sku, block_start, block_kind, block_row, block_first_column):
    """Whether a block of consecutive SKUs covers the whole lane ``row`` of ``kind`` (then
    :func:`project` copies the requests over all of it, whatever it held)."""
    for b in range(block_kind.shape[0]):
        if (
            block_kind[b] == kind
            and block_row[b] == row
            and block_first_column[b] == 0
            and block_start[b + 1] - block_start[b] == n_sku
        ):
            return True
    return False


@njit(cache=True, error_model="numpy", nogil=True)
def clear_outputs(rules, orders, delayed, transfers, allocations, log):
    """Prepare :func:`project`'s outputs (they may come uninitialised): ``orders``, ``delayed``,
    ``transfers`` and ``log`` zeroed, ``allocations`` set to +inf, except the lanes a block of
    consecutive SKUs then overwrites whole (:func:`_overwritten`)."""
    n_sku = orders.shape[1]
    start, kind, row, first = rules.block_start, rules.block_kind, rules.block_row, rules.block_first_column
    for p in range(orders.shape[0]):
        if not _overwritten(ORDER, p, n_sku, start, kind, row, first):
            orders[p, :] = 0.0
    delayed[:] = 0.0
    for x in range(transfers.shape[0]):
        if not _overwritten(TRANSFER, x, n_sku, start, kind, row, first):
            transfers[x, :] = 0.0
    for a in range(allocations.shape[0]):
        if not _overwritten(ALLOCATE, a, n_sku, start, kind, row, first):
            allocations[a, :] = np.inf
    log[:] = 0.0


@njit(cache=True, error_model="numpy", nogil=True)
def project_packed(
    rules,
    flat,
    open_requests,
    on_hand,
    inbound,
    released,
    budget,
    headroom,
    requested,
    orders,
    delayed,
    transfers,
    allocations,
    executed,
    shortfall,
    log,
):
    """:func:`project` with the rule constants packed; the outputs may come uninitialised
    (prepared by :func:`clear_outputs`)."""
    clear_outputs(rules, orders, delayed, transfers, allocations, log)
    return _project_with(
        rules,
        flat,
        open_requests,
        on_hand,
        inbound,
        released,
        budget,
        headroom,
        requested,
        orders,
        delayed,
        transfers,
        allocations,
        executed,
        shortfall,
        log,
    )


@njit(cache=True, error_model="numpy", inline="always")
def _project_with(
    rules,
    flat,
    open_requests,
    on_hand,
    inbound,
    released,
    budget,
    headroom,
    requested,
    orders,
    delayed,
    transfers,
    allocations,
    executed,
    shortfall,
    log,
):
    """:func:`project` with the packed rule constants unpacked (inlined where it is called)."""
    return project(
        flat,
        open_requests,
        rules.block_start,
        rules.block_kind,
        rules.block_row,
        rules.block_first_column,
        rules.column,
        rules.decision_integer,
        rules.sku_integer,
        on_hand,
        inbound,
        rules.reserve,
        rules.transfer_source,
        rules.transfer_destination,
        rules.transfer_capacity,
        released,
        rules.purchase_location,
        rules.purchase_supplier,
        rules.purchase_capacity,
        rules.supplier_capacity,
        rules.location_capacity,
        rules.unit_cost,
        rules.fixed_cost,
        rules.minimum_order,
        rules.approval_limit,
        rules.approval_delays,
        budget,
        headroom,
        rules.shortfall_penalty,
        requested,
        orders,
        delayed,
        transfers,
        allocations,
        executed,
        shortfall,
        log,
    )


@njit(cache=True, error_model="numpy", nogil=True)
def order_value_packed(rules, orders):
    """:func:`_order_value` of purchase orders (P, S) at the offered unit costs."""
    return _order_value(orders, rules.unit_cost, rules.fixed_cost)


@njit(cache=True, nogil=True)
def record_allocations(executed, allocations, positions, rows, columns):
    """``executed[positions] = allocations[rows, columns]`` (int64 index vectors of one length)."""
    for k in range(positions.shape[0]):
        executed[positions[k]] = allocations[rows[k], columns[k]]
