"""Compiled inner loops of the simulator (numba), one per business step.

The simulator sits inside the RL training loop, where numpy's per-call overhead on small
arrays would dominate: each step below is one compiled call that walks a whole DC × SKU
array in place. Shapes follow :mod:`invalloc.sim.network` (``D`` DCs, ``S`` SKUs, ``K``
cost-layer slots, ``T`` tiers, ``A`` sales lanes, ``L`` lanes of one kind, ``R`` ring slots
of goods in transit, indexed by arrival period modulo ``R``). Quantities are units, money
is currency; ``NEVER`` marks units that do not expire.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.core import types
from numba.experimental import structref

from invalloc.sim.accounts import Account

NEVER = np.iinfo(np.int64).max // 2

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


# --------------------------------------------------------------------------- packed arguments
# Every array passed to a compiled function from Python costs about 0.06 µs to type-check and
# unbox, and the simulator's six calls per period used to pass ~130 of them. The arrays are
# therefore packed into structrefs, the arrays shared with their Python owners, not copied:
# the feasibility rules' constants once per layer, the episode's state together with the
# network's constants once per reset. A structref argument itself costs ~0.6 µs (numba
# types it in Python), so each call takes at most one.


class _PackedArraysType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(kind)) for name, kind in fields)


@structref.register
class _RuleArraysType(_PackedArraysType):
    pass


@structref.register
class _EpisodeArraysType(_PackedArraysType):
    pass


class RuleArrays(structref.StructRefProxy):
    """The network's constants the feasibility layer reads (see :data:`RULE_FIELDS`)."""


class EpisodeArrays(structref.StructRefProxy):
    """One episode's state arrays (shared with the simulator) and the network's constants the
    period steps read (see :data:`EPISODE_FIELDS`)."""


NETWORK_FIELDS = (
    # suppliers (P lanes)
    "purchase_unit_cost",  # (P, S) money per unit
    "purchase_shipping_cost",  # (P,) money per unit
    "purchase_fixed_cost",  # (P,) money per order
    "purchase_location",  # (P,) destination DC
    "shelf_life",  # (S,) periods, 0 = never expires
    # transfers (X lanes)
    "transfer_source",  # (X,)
    "transfer_destination",  # (X,)
    "transfer_shipping_cost",  # (X,) money per unit
    # customers (T tiers, A sales lanes)
    "lost_sales",  # bool: unserved demand is lost (else backlogged)
    "contract_first",  # bool: contract minimums are served before priorities
    "tier_min_fill_rate",  # (T,) share
    "tier_penalty",  # (T,) money per unit short
    "sku_integer",  # (S,) bool: whole units
    "sales_has_decision",  # (A,) bool
    "sales_share",  # (A,) the lane channel's max share of the DC's stock
    "sales_capacity",  # (A,) units per period
    "reserve_quantity",  # (D, S) units
    "reserve_tiers",  # (D, T) bool
    "tier_order",  # (T,) service order
    "tier_channel",  # (T,)
    "lane_start",  # (C + 1,) start of each channel's lanes in lane_index
    "lane_index",  # (A,) sales lanes grouped by channel
    "sales_location",  # (A,) source DC
    "tier_price",  # (T, S) money per unit
    "sales_shipping_cost",  # (A,) money per unit
    # period close
    "holding_cost",  # (D, S) money per unit and period
    "interest_per_period",  # rate on credit used
    "perishable",  # bool
    "nrv_active",  # bool: lower of cost and NRV
    "net_realisable_value",  # (S,) money per unit
    "weighted_average",  # bool: cost method
)

RULE_FIELDS = (
    "kind",  # (n_decisions,) ORDER, TRANSFER or ALLOCATE
    "row",  # (n_decisions,) lane of the decision
    "column",  # (n_decisions,) SKU of the decision
    "decision_integer",  # (n_decisions,) bool: whole units
    "sku_integer",  # (S,) bool
    "reserve",  # (D, S) units
    "transfer_source",  # (X,)
    "transfer_destination",  # (X,)
    "transfer_capacity",  # (X,) units per period
    "purchase_location",  # (P,)
    "purchase_supplier",  # (P,)
    "purchase_capacity",  # (P,) units per period
    "supplier_capacity",  # (suppliers, S) units per period
    "location_capacity",  # (D,) units
    "unit_cost",  # (P, S) money per unit offered
    "fixed_cost",  # (P,) money per order
    "minimum_order",  # (P, S) units
    "approval_limit",  # money per order, inf = no approval rule
    "approval_delays",  # bool: orders above the limit wait rather than being capped
    "shortfall_penalty",  # (n_decisions,) money per unit not executed
)

EPISODE_FIELDS = NETWORK_FIELDS + (
    "on_hand",  # (D, S)
    "inbound",  # (D, S) units in transit to each DC
    "backlog",  # (T, S)
    "transit_units",  # (R, D, S)
    "transit_value",  # (R, D, S)
    "transit_expires",  # (R, D, S)
    "delivery_units",  # (R, D, S) on the way to customers
    "delivery_cost",  # (R, D, S)
    "delivery_revenue",  # (R, A)
    "flows_into",  # (D, S) cumulative units in, for the conservation invariant
    "flows_out",  # (D, S) cumulative units out
    "balance",  # ledger balances
    "period_start",  # ledger balances at the start of the period
    "layer_qty",  # (D, S, K) cost layers
    "layer_cost",  # (D, S, K)
    "layer_expires",  # (D, S, K)
    "layer_used",  # (D, S)
    "receipt_unit_cost",  # (D, S) scratch
    "invoices",  # (P,) scratch: supplier invoice per lane this period
    "transfer_value",  # (X, S) scratch: value per transfer lane this period
    "shipped",  # (A, T, S) scratch: units shipped per sales lane and tier
    "revenue_by_lane",  # (A,) scratch: revenue invoiced per sales lane
    "rules",  # RuleArrays: the feasibility layer's constants (for the decision point)
)

structref.define_proxy(RuleArrays, _RuleArraysType, list(RULE_FIELDS))
structref.define_proxy(EpisodeArrays, _EpisodeArraysType, list(EPISODE_FIELDS))


def _packable(value):
    """Arrays C-contiguous (one compiled signature for every scenario), flags as bool, money as
    float; packed rule constants as they are."""
    if isinstance(value, RuleArrays):
        return value
    if isinstance(value, np.ndarray):
        return value if value.flags.c_contiguous else np.ascontiguousarray(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    return float(value)


def packable(fields, values: dict) -> tuple:
    """``values`` for exactly ``fields``, in field order, ready to pack (see :func:`_packable`)."""
    if set(values) != set(fields):
        missing, extra = set(fields) - set(values), set(values) - set(fields)
        raise TypeError(f"missing {sorted(missing)}, unexpected {sorted(extra)}")
    return tuple(_packable(values[name]) for name in fields)


@njit(cache=True, error_model="numpy")
def post(balance, debit, credit, amount):
    """Double entry on the ledger's balance vector (debit positive)."""
    balance[debit] += amount
    balance[credit] -= amount


@njit(cache=True, error_model="numpy")
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
            if need > 0:
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


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def receive_layers(layer_qty, layer_cost, layer_expires, used, quantity, unit_cost, expires, weighted_average):
    """Append one layer per DC × SKU with ``quantity > 0``; False (nothing changed) if slots run out.

    Under the weighted-average method every layer of a DC × SKU then carries the moving
    average unit cost.
    """
    n_loc, n_sku, slots = layer_qty.shape
    for d in range(n_loc):
        for s in range(n_sku):
            if quantity[d, s] > 0.0 and used[d, s] >= slots:
                _compact_row(layer_qty, layer_cost, layer_expires, used, d, s)
                if used[d, s] >= slots:
                    return False
    for d in range(n_loc):
        for s in range(n_sku):
            if quantity[d, s] <= 0.0:
                continue
            k = used[d, s]
            layer_qty[d, s, k] = quantity[d, s]
            layer_cost[d, s, k] = unit_cost[d, s]
            layer_expires[d, s, k] = expires[d, s]
            used[d, s] = k + 1
            if weighted_average:
                units = 0.0
                value = 0.0
                for j in range(k + 1):
                    units += layer_qty[d, s, j]
                    value += layer_qty[d, s, j] * layer_cost[d, s, j]
                average = value / units if units > 0.0 else 0.0
                for j in range(k + 1):
                    layer_cost[d, s, j] = average
    return True


@njit(cache=True, error_model="numpy")
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
):
    """Serve this period's demand plus backlog, tier by tier, from the DCs' stock.

    Tiers are served in ``tier_order``, each from its channel's sales lanes in lane order
    (``lane_index[lane_start[c]:lane_start[c+1]]``) within the lanes' allocations (A, S).
    With ``contract_first`` every tier first gets its contractual minimum (min fill rate ×
    wanted, whole units rounded up), then the rest by priority. Reserve stock (D, S) is
    only for the tiers marked in ``reserve_tiers`` (D, T).

    Writes ``served``, ``served_new`` (served out of this period's demand, after backlog),
    ``short`` (T, S) and ``shipped`` (A, T, S); updates ``backlog`` (T, S) in place (zero
    under lost sales). Returns the penalty for units short (money).
    """
    n_tier, n_sku = new_demand.shape
    reserve_left = np.minimum(reserve, on_hand)
    free = on_hand - reserve_left
    allocation_left = allocations.copy()
    wanted = new_demand + backlog
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
            for s in range(n_sku):
                target = wanted[t, s]
                if p == 0:
                    target = min_fill_rate[t] * target
                    if sku_integer[s]:
                        target = np.ceil(target - 1e-9)
                need = target - served[t, s]
                if need <= 0.0:
                    continue
                for j in range(lane_start[c], lane_start[c + 1]):
                    a = lane_index[j]
                    d = sales_location[a]
                    room = allocation_left[a, s]
                    take = min(need, room, free[d, s])
                    free[d, s] -= take
                    if reserve_tiers[d, t]:
                        extra = min(need - take, room - take, reserve_left[d, s])
                        reserve_left[d, s] -= extra
                        take += extra
                    allocation_left[a, s] -= take
                    served[t, s] += take
                    shipped[a, t, s] += take
                    need -= take
                    if need <= 0.0:
                        break
    penalty = 0.0
    for t in range(n_tier):
        for s in range(n_sku):
            short[t, s] = wanted[t, s] - served[t, s]
            served_new[t, s] = max(served[t, s] - backlog[t, s], 0.0)
            penalty += tier_penalty[t] * short[t, s]
            backlog[t, s] = 0.0 if lost_sales else short[t, s]
    return penalty


@njit(cache=True, error_model="numpy")
def issue_outbound(
    lane_units, lane_source, layer_qty, layer_cost, layer_expires, used, on_hand, flows_out, lane_cost, lane_expires
):
    """Issue the units leaving each DC on L lanes (L, S) at FIFO cost.

    Lanes leaving one DC in the same period share the cost of the units it issued in
    proportion to their units. Writes each lane's cost (L, S) and earliest expiry (L, S).
    """
    n_loc, n_sku = on_hand.shape
    outbound = np.zeros((n_loc, n_sku))
    for lane in range(lane_units.shape[0]):
        for s in range(n_sku):
            outbound[lane_source[lane], s] += lane_units[lane, s]
    cost = np.zeros((n_loc, n_sku))
    expires = np.empty((n_loc, n_sku), dtype=np.int64)
    fifo_issue(layer_qty, layer_cost, layer_expires, used, outbound, cost, expires)
    for d in range(n_loc):
        for s in range(n_sku):
            on_hand[d, s] -= outbound[d, s]
            flows_out[d, s] += outbound[d, s]
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


@njit(cache=True, error_model="numpy")
def expire_layers(layer_qty, layer_cost, layer_expires, used, period, expired_units):
    """Remove layers whose expiry period is ≤ ``period``; writes units (D, S), returns their cost."""
    n_loc, n_sku, _ = layer_qty.shape
    cost = 0.0
    for d in range(n_loc):
        for s in range(n_sku):
            units = 0.0
            for k in range(used[d, s]):
                q = layer_qty[d, s, k]
                if q > 0.0 and layer_expires[d, s, k] <= period:
                    units += q
                    cost += q * layer_cost[d, s, k]
                    layer_qty[d, s, k] = 0.0
            expired_units[d, s] = units
    return cost


# --------------------------------------------------------------------------- feasibility
# Rule rows of the intervention log (count of decisions changed, units removed); the order
# matches ``invalloc.sim.feasibility.RULES``.
INVALID, NON_NEGATIVE, SOURCE_STOCK, LANE_CAPACITY, SUPPLIER_CAPACITY, LOCATION_CAPACITY = 0, 1, 2, 3, 4, 5
PURCHASE_APPROVAL, PURCHASE_BUDGET, CASH_RULE, CHANNEL_SHARE, AVAILABLE_STOCK, MINIMUM_ORDER = 6, 7, 8, 9, 10, 11

ORDER, TRANSFER, ALLOCATE = 0, 1, 2


@njit(cache=True, error_model="numpy")
def _whole(value, integer):
    return np.floor(value + 1e-9) if integer else value


@njit(cache=True, error_model="numpy")
def _lower(block, i, s, new, log, rule):
    """Set block[i, s] to ``new`` (never above the old value) and log the change under ``rule``."""
    old = block[i, s]
    if new != old:
        log[rule, 0] += 1.0
        log[rule, 1] += abs(old - new)
        block[i, s] = new


@njit(cache=True, error_model="numpy")
def _scale_row(block, i, factor, sku_integer, log, rule):
    """Scale row ``i`` of ``block`` (lanes, S) by ``factor`` ≤ 1, whole units rounded down."""
    for s in range(block.shape[1]):
        _lower(block, i, s, _whole(block[i, s] * factor, sku_integer[s]), log, rule)


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def _scale_purchases(orders, delayed, factor, sku_integer, log, rule):
    for p in range(orders.shape[0]):
        for s in range(orders.shape[1]):
            _lower(orders, p, s, _whole(orders[p, s] * factor, sku_integer[s]), log, rule)
            _lower(delayed, p, s, _whole(delayed[p, s] * factor, sku_integer[s]), log, rule)


@njit(cache=True, error_model="numpy")
def project(
    flat,
    open_requests,
    kind,
    row,
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

    Fills ``requested``, ``executed`` and ``shortfall`` (n_decisions,; the unexecuted part of
    each replenishment request), ``orders``/``delayed`` (P, S), ``transfers`` (X, S),
    ``allocations`` (A, S; +inf where a lane has no decision) and the intervention ``log``.
    Returns (value of the purchase orders, penalty for the shortfalls), money.
    """
    n_sku = sku_integer.shape[0]
    n_loc = on_hand.shape[0]
    # Sanitise: NaN/inf and negatives become 0; whole units rounded down; open requests added.
    for i in range(flat.shape[0]):
        value = flat[i]
        if not np.isfinite(value):
            log[INVALID, 0] += 1.0
            value = 0.0
        if value < 0.0:
            log[NON_NEGATIVE, 0] += 1.0
            log[NON_NEGATIVE, 1] -= value
            value = 0.0
        value = _whole(value, decision_integer[i]) + open_requests[i]
        requested[i] = value
        if kind[i] == ORDER:
            orders[row[i], column[i]] = value
        elif kind[i] == TRANSFER:
            transfers[row[i], column[i]] = value
        else:
            allocations[row[i], column[i]] = value

    # Transfers: lane capacity, then the source DC's unreserved stock at the start of the period.
    n_transfer = transfers.shape[0]
    if n_transfer:
        for x in range(n_transfer):
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
        for x in range(n_transfer):
            d = transfer_source[x]
            for s in range(n_sku):
                unreserved = max(on_hand[d, s] - reserve[d, s], 0.0)
                if outbound[d, s] > unreserved:
                    factor = unreserved / outbound[d, s]
                    _lower(transfers, x, s, _whole(transfers[x, s] * factor, sku_integer[s]), log, SOURCE_STOCK)

    # Purchase orders: lane capacity, supplier capacity, after the orders released from approval
    # this period, which take their share of both first.
    n_purchase = orders.shape[0]
    for p in range(n_purchase):
        total = 0.0
        taken = 0.0
        for s in range(n_sku):
            total += orders[p, s]
            taken += released[p, s]
        if total > 0.0 and total + taken > purchase_capacity[p]:
            factor = max(purchase_capacity[p] - taken, 0.0) / total
            _scale_row(orders, p, factor, sku_integer, log, LANE_CAPACITY)
    if np.isfinite(supplier_capacity).any():
        per_supplier = np.zeros(supplier_capacity.shape)
        taken_supplier = np.zeros(supplier_capacity.shape)
        for p in range(n_purchase):
            for s in range(n_sku):
                per_supplier[purchase_supplier[p], s] += orders[p, s]
                taken_supplier[purchase_supplier[p], s] += released[p, s]
        for p in range(n_purchase):
            k = purchase_supplier[p]
            for s in range(n_sku):
                if per_supplier[k, s] > 0.0 and per_supplier[k, s] + taken_supplier[k, s] > supplier_capacity[k, s]:
                    factor = max(supplier_capacity[k, s] - taken_supplier[k, s], 0.0) / per_supplier[k, s]
                    _lower(orders, p, s, _whole(orders[p, s] * factor, sku_integer[s]), log, SUPPLIER_CAPACITY)

    # Storage: on hand + in transit + new inbound ≤ the DC's capacity. Transfers are limited by
    # their destination's room first; orders then get what room is left once the final
    # transfers in and out are known, so no later step can push a DC over its capacity.
    if np.isfinite(location_capacity).any():
        room = np.empty(n_loc)
        for d in range(n_loc):
            position = 0.0
            for s in range(n_sku):
                position += on_hand[d, s] + inbound[d, s]
            room[d] = max(location_capacity[d] - position, 0.0)
        transfers_in = np.zeros(n_loc)
        for x in range(n_transfer):
            for s in range(n_sku):
                transfers_in[transfer_destination[x]] += transfers[x, s]
        for x in range(n_transfer):
            d = transfer_destination[x]
            if transfers_in[d] > room[d]:
                f = room[d] / transfers_in[d]
                _scale_row(transfers, x, f, sku_integer, log, LOCATION_CAPACITY)
        net_transfers = np.zeros(n_loc)
        for x in range(n_transfer):
            for s in range(n_sku):
                net_transfers[transfer_destination[x]] += transfers[x, s]
                net_transfers[transfer_source[x]] -= transfers[x, s]
        ordered = np.zeros(n_loc)  # new orders (scalable)
        arriving_released = np.zeros(n_loc)  # orders released from approval (already committed)
        for p in range(n_purchase):
            for s in range(n_sku):
                ordered[purchase_location[p]] += orders[p, s]
                arriving_released[purchase_location[p]] += released[p, s]
        for p in range(n_purchase):
            d = purchase_location[p]
            if ordered[d] > 0.0 and ordered[d] + arriving_released[d] + net_transfers[d] > room[d]:
                f = max(room[d] - net_transfers[d] - arriving_released[d], 0.0) / ordered[d]
                _scale_row(orders, p, f, sku_integer, log, LOCATION_CAPACITY)

    # Purchase approval: an order above the value limit is capped, or held for approval.
    if np.isfinite(approval_limit):
        for p in range(n_purchase):
            variable = 0.0
            units = 0.0
            for s in range(n_sku):
                variable += orders[p, s] * unit_cost[p, s]
                units += orders[p, s]
            if units <= 0.0 or variable + fixed_cost[p] <= approval_limit:
                continue
            if approval_delays:
                for s in range(n_sku):
                    delayed[p, s] = orders[p, s]
                    _lower(orders, p, s, 0.0, log, PURCHASE_APPROVAL)
            else:
                factor = max(approval_limit - fixed_cost[p], 0.0) / variable
                _scale_row(orders, p, factor, sku_integer, log, PURCHASE_APPROVAL)

    # Purchase budget, then the cash rule: one common scale factor over all orders.
    for rule in (PURCHASE_BUDGET, CASH_RULE):
        limit = budget if rule == PURCHASE_BUDGET else headroom
        if not np.isfinite(limit):
            continue
        total = _order_value(orders, unit_cost, fixed_cost) + _order_value(delayed, unit_cost, fixed_cost)
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

    # Minimum order quantity: a smaller order is dropped (the nearest feasible quantity below).
    for p in range(n_purchase):
        for s in range(n_sku):
            if 0.0 < orders[p, s] < minimum_order[p, s] - 1e-9:
                _lower(orders, p, s, 0.0, log, MINIMUM_ORDER)
            if 0.0 < delayed[p, s] < minimum_order[p, s] - 1e-9:
                _lower(delayed, p, s, 0.0, log, MINIMUM_ORDER)

    penalty = 0.0
    for i in range(flat.shape[0]):
        if kind[i] == ORDER:
            executed[i] = orders[row[i], column[i]] + delayed[row[i], column[i]]
        elif kind[i] == TRANSFER:
            executed[i] = transfers[row[i], column[i]]
        else:
            executed[i] = allocations[row[i], column[i]]
            shortfall[i] = 0.0
            continue
        shortfall[i] = requested[i] - executed[i]
        penalty += shortfall[i] * shortfall_penalty[i]
    value = _order_value(orders, unit_cost, fixed_cost) + _order_value(delayed, unit_cost, fixed_cost)
    return value, penalty


@njit(cache=True, error_model="numpy")
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
        for s in range(n_sku):
            stock = available[d, s]
            cap = _whole(sales_share[a] * stock, sku_integer[s]) if sales_share[a] < 1.0 else stock
            if not has_decision[a]:
                allocations[a, s] = cap
            elif allocations[a, s] > cap:
                _lower(allocations, a, s, cap, log, CHANNEL_SHARE if cap < stock else AVAILABLE_STOCK)
        if np.isfinite(sales_capacity[a]):
            lane_total = 0.0
            for s in range(n_sku):
                lane_total += allocations[a, s]
            if lane_total > sales_capacity[a]:
                factor = sales_capacity[a] / lane_total
                for s in range(n_sku):
                    new = _whole(allocations[a, s] * factor, sku_integer[s])
                    if has_decision[a]:
                        _lower(allocations, a, s, new, log, LANE_CAPACITY)
                    else:
                        allocations[a, s] = new
    total = np.zeros(available.shape)
    for a in range(n_lanes):
        if has_decision[a]:
            for s in range(n_sku):
                total[sales_location[a], s] += allocations[a, s]
    for a in range(n_lanes):
        if not has_decision[a]:
            continue
        d = sales_location[a]
        for s in range(n_sku):
            if total[d, s] > available[d, s]:
                factor = available[d, s] / total[d, s]
                _lower(allocations, a, s, _whole(allocations[a, s] * factor, sku_integer[s]), log, AVAILABLE_STOCK)


# --------------------------------------------------------------------------- shipments
@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def dispatch_sales(
    shipped,
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
):
    """Issue units shipped per sales lane and tier (A, T, S) at FIFO cost and send them to customers.

    Returns (cost of the goods, freight, sales value), money.
    """
    n_lanes, n_tiers, n_sku = shipped.shape
    lane_units = np.zeros((n_lanes, n_sku))
    freight = 0.0
    sales_value = 0.0
    for a in range(n_lanes):
        revenue = 0.0
        for t in range(n_tiers):
            for s in range(n_sku):
                q = shipped[a, t, s]
                if q > 0.0:
                    lane_units[a, s] += q
                    revenue += q * tier_price[t, s]
        units = 0.0
        for s in range(n_sku):
            units += lane_units[a, s]
        freight += units * shipping_cost[a]
        delivery_revenue[slots[a], a] += revenue
        sales_value += revenue
    lane_cost = np.empty((n_lanes, n_sku))
    lane_expires = np.empty((n_lanes, n_sku), dtype=np.int64)
    issue_outbound(
        lane_units,
        sales_location,
        layer_qty,
        layer_cost,
        layer_expires,
        used,
        on_hand,
        flows_out,
        lane_cost,
        lane_expires,
    )
    goods_cost = 0.0
    for a in range(n_lanes):
        d = sales_location[a]
        r = slots[a]
        for s in range(n_sku):
            delivery_units[r, d, s] += lane_units[a, s]
            delivery_cost[r, d, s] += lane_cost[a, s]
            goods_cost += lane_cost[a, s]
    return goods_cost, freight, sales_value


@njit(cache=True, error_model="numpy")
def take_deliveries(slot, delivery_units, delivery_cost, delivery_revenue, revenue_by_lane):
    """Empty ring slot ``slot`` of goods reaching customers; writes revenue per lane (A,).

    Returns (revenue, cost of the goods), money.
    """
    revenue = 0.0
    for a in range(delivery_revenue.shape[1]):
        revenue_by_lane[a] = delivery_revenue[slot, a]
        revenue += delivery_revenue[slot, a]
        delivery_revenue[slot, a] = 0.0
    cost = 0.0
    units = delivery_units[slot]
    goods = delivery_cost[slot]
    for d in range(units.shape[0]):
        for s in range(units.shape[1]):
            cost += goods[d, s]
            units[d, s] = 0.0
            goods[d, s] = 0.0
    return revenue, cost


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def write_down_layers(layer_qty, layer_cost, used, net_realisable_value):
    """Lower of cost and NRV: layers costing more than the SKU's NRV (S,) are written down to it.

    Returns the write-down (money).
    """
    n_loc, n_sku, _ = layer_qty.shape
    amount = 0.0
    for d in range(n_loc):
        for s in range(n_sku):
            nrv = net_realisable_value[s]
            for k in range(used[d, s]):
                if layer_qty[d, s, k] > 0.0 and layer_cost[d, s, k] > nrv:
                    amount += layer_qty[d, s, k] * (layer_cost[d, s, k] - nrv)
                    layer_cost[d, s, k] = nrv
    return amount


@njit(cache=True, error_model="numpy")
def customer_phase(
    new_demand,
    backlog,
    lost_sales,
    contract_first,
    min_fill_rate,
    tier_penalty,
    sku_integer,
    allocations,
    has_decision,
    sales_share,
    sales_capacity,
    on_hand,
    reserve,
    reserve_tiers,
    tier_order,
    tier_channel,
    lane_start,
    lane_index,
    sales_location,
    tier_price,
    shipping_cost,
    leads,
    period,
    layer_qty,
    layer_cost,
    layer_expires,
    used,
    flows_out,
    delivery_units,
    delivery_cost,
    delivery_revenue,
    balance,
    log,
    served,
    served_new,
    short,
    shipped,
    revenue_by_lane,
):
    """The customers' part of a period, booked: allocations capped by what is on hand now,
    demand served (:func:`serve_customers`), goods issued and shipped (:func:`dispatch_sales`),
    and what reaches customers this period delivered and invoiced.

    Returns (penalty for units short, sales value shipped, freight, revenue invoiced), money;
    writes ``served``, ``served_new``, ``short`` (T, S), ``shipped`` (A, T, S)
    and ``revenue_by_lane`` (A,), the revenue invoiced per sales lane.
    """
    limit_allocations(allocations, has_decision, on_hand, sales_location, sales_share, sales_capacity, sku_integer, log)
    shipped[:] = 0.0
    ring = delivery_units.shape[0]
    slot = period % ring
    slots = (period + leads) % ring
    penalty = serve_customers(
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
    )
    goods, freight, sales_value = dispatch_sales(
        shipped,
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
    )
    post(balance, SHIPPING, CASH, freight)
    post(balance, IN_TRANSIT, INVENTORY, goods)
    revenue, cost = take_deliveries(slot, delivery_units, delivery_cost, delivery_revenue, revenue_by_lane)
    post(balance, RECEIVABLES, REVENUE, revenue)
    post(balance, COST_OF_GOODS_SOLD, IN_TRANSIT, cost)
    return penalty, sales_value, freight, revenue


@njit(cache=True, error_model="numpy")
def close_period(
    paid,
    collected,
    holding_cost,
    on_hand,
    penalty,
    interest_rate,
    perishable,
    period,
    nrv_active,
    net_realisable_value,
    layer_qty,
    layer_cost,
    layer_expires,
    used,
    flows_out,
    balance,
):
    """Period close, booked: supplier bills ``paid`` and customer payments ``collected`` that
    fell due (money), holding cost on on-hand stock, penalties, interest on credit used,
    expiry write-offs and lower of cost and NRV.

    Returns (holding, interest, write-downs incl. expiry, expired units), money and units.
    """
    post(balance, PAYABLES, CASH, paid)
    post(balance, CASH, RECEIVABLES, collected)
    n_loc, n_sku = on_hand.shape
    holding = 0.0
    for d in range(n_loc):
        for s in range(n_sku):
            holding += holding_cost[d, s] * on_hand[d, s]
    post(balance, HOLDING, CASH, holding)
    post(balance, PENALTIES, CASH, penalty)
    interest = interest_rate * max(0.0, -balance[CASH])
    post(balance, INTEREST, CASH, interest)
    written = 0.0
    expired_total = 0.0
    if perishable:
        expired = np.zeros((n_loc, n_sku))
        written = expire_layers(layer_qty, layer_cost, layer_expires, used, period + 1, expired)
        for d in range(n_loc):
            for s in range(n_sku):
                on_hand[d, s] -= expired[d, s]
                flows_out[d, s] += expired[d, s]
                expired_total += expired[d, s]
    if nrv_active:
        written += write_down_layers(layer_qty, layer_cost, used, net_realisable_value)
    post(balance, WRITE_DOWNS, INVENTORY, written)
    return holding, interest, written, expired_total


# --------------------------------------------------------------------------- packed entry points
# One compiled call per business step with the packed arrays (``ep``: EpisodeArrays, which
# also holds the network's constants; ``rules``: RuleArrays); each unpacks them for the step above.


@njit(cache=True, error_model="numpy")
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
    (``orders``, ``delayed``, ``transfers`` and ``log`` are zeroed, ``allocations`` set to +inf)."""
    orders[:] = 0.0
    delayed[:] = 0.0
    transfers[:] = 0.0
    allocations[:] = np.inf
    log[:] = 0.0
    return project(
        flat,
        open_requests,
        rules.kind,
        rules.row,
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


@njit(cache=True, error_model="numpy")
def order_value_packed(rules, orders):
    """:func:`_order_value` of purchase orders (P, S) at the offered unit costs."""
    return _order_value(orders, rules.unit_cost, rules.fixed_cost)


@njit(cache=True, error_model="numpy")
def decision_point(
    ep,
    flat,
    open_requests,
    released,
    budget,
    headroom,
    leads,
    period,
    requested,
    orders,
    delayed,
    transfers,
    allocations,
    executed,
    shortfall,
    log,
):
    """The decision point in one call: the period's books opened, the request projected
    (:func:`project`, on the episode's stock) and the transfers sent (:func:`send_transfers`).

    The outputs may come uninitialised (as for :func:`project_packed`). Returns (value of the
    purchase orders, penalty for the shortfalls, cost of the goods transferred, transfer
    freight), money.
    """
    ep.period_start[:] = ep.balance
    value, penalty = project_packed(
        ep.rules,
        flat,
        open_requests,
        ep.on_hand,
        ep.inbound,
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
    goods = 0.0
    freight = 0.0
    if transfers.shape[0] > 0:
        goods, freight = send_transfers(ep, transfers, leads, period)
    return value, penalty, goods, freight


@njit(cache=True, error_model="numpy")
def reset_episode(ep, opening_stock, opening_unit_cost, opening_expiry, opening_value, opening_cash):
    """Empty the episode's state arrays in place, then book the opening stock and cash.

    Returns False (the layers hold nothing) if the layers have too few slots for the opening
    stock, as :func:`receive_layers` does.
    """
    ep.on_hand[:] = opening_stock
    ep.inbound[:] = 0.0
    ep.backlog[:] = 0.0
    ep.transit_units[:] = 0.0
    ep.transit_value[:] = 0.0
    ep.transit_expires[:] = NEVER
    ep.delivery_units[:] = 0.0
    ep.delivery_cost[:] = 0.0
    ep.delivery_revenue[:] = 0.0
    ep.flows_into[:] = opening_stock
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


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def ship_orders(ep, ordered, shipped, leads, period):
    """:func:`ship_purchases` on the episode's state; writes ``ep.invoices``."""
    return ship_purchases(
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


@njit(cache=True, error_model="numpy")
def serve_period(ep, new_demand, allocations, leads, period, log, served, served_new, short, executed):
    """:func:`customer_phase` on the episode's state; writes ``ep.shipped`` and ``ep.revenue_by_lane``,
    then the allocations as capped into the decision's ``executed`` vector
    (:meth:`FeasibilityLayer.record_allocations`)."""
    result = customer_phase(
        new_demand,
        ep.backlog,
        ep.lost_sales,
        ep.contract_first,
        ep.tier_min_fill_rate,
        ep.tier_penalty,
        ep.sku_integer,
        allocations,
        ep.sales_has_decision,
        ep.sales_share,
        ep.sales_capacity,
        ep.on_hand,
        ep.reserve_quantity,
        ep.reserve_tiers,
        ep.tier_order,
        ep.tier_channel,
        ep.lane_start,
        ep.lane_index,
        ep.sales_location,
        ep.tier_price,
        ep.sales_shipping_cost,
        leads,
        period,
        ep.layer_qty,
        ep.layer_cost,
        ep.layer_expires,
        ep.layer_used,
        ep.flows_out,
        ep.delivery_units,
        ep.delivery_cost,
        ep.delivery_revenue,
        ep.balance,
        log,
        served,
        served_new,
        short,
        ep.shipped,
        ep.revenue_by_lane,
    )
    rules = ep.rules
    kind, row, column = rules.kind, rules.row, rules.column
    for i in range(kind.shape[0]):
        if kind[i] == ALLOCATE:
            executed[i] = allocations[row[i], column[i]]
    return result


@njit(cache=True, error_model="numpy")
def close_books(ep, paid, collected, penalty, period):
    """:func:`close_period` on the episode's state, and the period's figures from the ledger.

    Returns (holding, interest, write-downs, expired units, revenue, profit, cost of goods
    sold, cash, inventory value): money except the units. Profit sums the P&L accounts'
    movements in chart order, as ``sum()`` over them would.
    """
    holding, interest, written, expired = close_period(
        paid,
        collected,
        ep.holding_cost,
        ep.on_hand,
        penalty,
        ep.interest_per_period,
        ep.perishable,
        period,
        ep.nrv_active,
        ep.net_realisable_value,
        ep.layer_qty,
        ep.layer_cost,
        ep.layer_expires,
        ep.layer_used,
        ep.flows_out,
        ep.balance,
    )
    balance, start = ep.balance, ep.period_start
    pnl = 0.0
    for account in range(REVENUE, INTEREST + 1):
        pnl += balance[account] - start[account]
    revenue = -(balance[REVENUE] - start[REVENUE])
    cost_of_goods_sold = balance[COST_OF_GOODS_SOLD] - start[COST_OF_GOODS_SOLD]
    return holding, interest, written, expired, revenue, -pnl, cost_of_goods_sold, balance[CASH], balance[INVENTORY]


@njit(cache=True)
def any_nonzero(array):
    """Whether any entry of a 2-D array is non-zero (``array.any()`` without numpy's reduction set-up)."""
    for row in range(array.shape[0]):
        for column in range(array.shape[1]):
            if array[row, column] != 0:
                return True
    return False


@njit(cache=True)
def any_nonzero_rows(array, rows):
    """Whether any entry in the given ``rows`` (int64 (k,)) of a 2-D array is non-zero
    (``array[rows].any()`` without the copy)."""
    for row in rows:
        for column in range(array.shape[1]):
            if array[row, column] != 0:
                return True
    return False


@njit(cache=True)
def record_allocations(executed, allocations, positions, rows, columns):
    """``executed[positions] = allocations[rows, columns]`` (int64 index vectors of one length)."""
    for k in range(positions.shape[0]):
        executed[positions[k]] = allocations[rows[k], columns[k]]
