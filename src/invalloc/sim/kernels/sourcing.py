"""A rule policy's planning, compiled: the sourcing step (:meth:`invalloc.sim.planning.Sourcing.request`,
:func:`plan_sources`) and the capped open allocation (:func:`open_allocation`).

The same arithmetic as the numpy code, in the same order, so the requests are the same bit
for bit: sums are numpy's pairwise sums (:func:`pairwise_sum`), and dot products call the
very BLAS routine numpy's ``@`` calls for two float64 vectors (``cblas_ddot`` of the
OpenBLAS numpy ships), through its address (:func:`numpy_ddot_address`). Where that routine
cannot be found, or a probe shows that either differs from numpy here, the planner keeps
its numpy code (:func:`exact_arithmetic`).

Options (lanes that are some DC × SKU's k-th cheapest inbound lane) are flattened: option
``o`` of rank ``r`` is ``rank_start[r] <= o < rank_start[r + 1]``; its SKUs, decision
positions, unit costs and minimum orders are ``[cell_start[o]:cell_start[o + 1]]`` of the
flat arrays.
"""

from __future__ import annotations

import ctypes
import glob
import math
import os

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

ORDER, TRANSFER = 0, 1


@intrinsic
def _ddot(typingctx, address, n, x, x_start, y, y_start):
    """``cblas_ddot(n, x + x_start, 1, y + y_start, 1)`` of the (ILP64) routine at ``address``."""
    sig = types.float64(types.int64, types.int64, x, types.int64, y, types.int64)

    def codegen(context, builder, signature, args):
        address, n, x, x_start, y, y_start = args
        x_array = context.make_array(signature.args[2])(context, builder, x)
        y_array = context.make_array(signature.args[4])(context, builder, y)
        i64, pointer = ir.IntType(64), ir.DoubleType().as_pointer()
        function_type = ir.FunctionType(ir.DoubleType(), [i64, pointer, i64, pointer, i64])
        function = builder.inttoptr(address, function_type.as_pointer())
        one = ir.Constant(i64, 1)
        x_data = builder.gep(builder.bitcast(x_array.data, pointer), [x_start])
        y_data = builder.gep(builder.bitcast(y_array.data, pointer), [y_start])
        return builder.call(function, [n, x_data, one, y_data, one])

    return sig, codegen


def numpy_ddot_address() -> int:
    """Address of the ``cblas_ddot`` numpy's ``@`` calls for float64 vectors, or 0 if not found.

    numpy's wheels bundle OpenBLAS with 64-bit integers as ``scipy_cblas_ddot64_``; the
    library is already loaded by numpy, so this opens the same copy.
    """
    folder = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(folder, "libscipy_openblas64_*"))):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_cblas_ddot64_", "cblas_ddot64_"):
            function = getattr(library, name, None)
            if function is not None:
                return int(ctypes.cast(function, ctypes.c_void_p).value or 0)
    return 0


@njit(cache=True, error_model="numpy", nogil=True)
def dot(address, x, x_start, y, y_start, n):
    """``float(x[x_start:x_start+n] @ y[y_start:y_start+n])`` as numpy computes it (contiguous float64)."""
    if n <= 0:
        return 0.0
    return 0.0 + _ddot(address, n, x, x_start, y, y_start)


@njit(cache=True, error_model="numpy", nogil=True)
def _block_sum(a, start, n):
    """numpy's pairwise sum of at most 128 values: eight running sums, then the rest in turn."""
    if n < 8:
        total = 0.0
        for i in range(start, start + n):
            total += a[i]
        return total
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    i = 8
    whole = n - n % 8
    while i < whole:
        b = start + i
        r0 += a[b]
        r1 += a[b + 1]
        r2 += a[b + 2]
        r3 += a[b + 3]
        r4 += a[b + 4]
        r5 += a[b + 5]
        r6 += a[b + 6]
        r7 += a[b + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += a[start + i]
        i += 1
    return total


@njit(cache=True, error_model="numpy", nogil=True)
def pairwise_sum(a, start, n):
    """numpy's pairwise sum of ``a[start:start+n]`` (contiguous float64), without its 0.0 start.

    Above 128 values numpy sums the two halves (split at a multiple of 8) and adds them; the
    recursion is unrolled onto a stack here (numba's cache mishandles recursive functions).
    """
    if n <= 128:
        return _block_sum(a, start, n)
    frame_start = np.empty(128, dtype=np.int64)
    frame_size = np.empty(128, dtype=np.int64)
    frame_join = np.empty(128, dtype=np.bool_)
    partial = np.empty(64)
    frames, partials = 1, 0
    frame_start[0], frame_size[0], frame_join[0] = start, n, False
    while frames:
        frames -= 1
        first, size, join = frame_start[frames], frame_size[frames], frame_join[frames]
        if join:  # both halves are done: left + right
            partials -= 1
            partial[partials - 1] = partial[partials - 1] + partial[partials]
        elif size <= 128:
            partial[partials] = _block_sum(a, first, size)
            partials += 1
        else:
            half = size // 2
            half -= half % 8
            # Popped in turn: the left half, the right half, then their join.
            frame_start[frames], frame_size[frames], frame_join[frames] = first, size, True
            frame_start[frames + 1], frame_size[frames + 1], frame_join[frames + 1] = first + half, size - half, False
            frame_start[frames + 2], frame_size[frames + 2], frame_join[frames + 2] = first, half, False
            frames += 3
    return partial[0]


@njit(cache=True, error_model="numpy", nogil=True)
def array_sum(a, start, n):
    """``float(a[start:start+n].sum())`` as numpy computes it."""
    return 0.0 + pairwise_sum(a, start, n)


@njit(cache=True, error_model="numpy", nogil=True)
def _maximum(a, b):
    """``np.maximum`` of two floats (NaN wins; ties keep ``a``)."""
    if a >= b or a != a:
        return a
    return b


@njit(cache=True, error_model="numpy", nogil=True)
def _builtin_max(a, b):
    """Python's ``max(a, b)`` of two floats (``b`` only if it is larger)."""
    return b if b > a else a


@njit(cache=True, error_model="numpy", nogil=True)
def _round(q, start, stop, skus, integer):
    """Whole-unit SKUs rounded down (``floor(q + 1e-9)``) in ``q[start:stop]``."""
    for i in range(start, stop):
        if integer[skus[i]]:
            q[i] = np.floor(q[i] + 1e-9)


@njit(cache=True, error_model="numpy", nogil=True)
def _scale(q, start, stop, factor, divisor, skus, integer):
    """``whole(q * factor / divisor)`` on ``q[start:stop]`` (in numpy's order of operations)."""
    for i in range(start, stop):
        q[i] = q[i] * factor / divisor
    _round(q, start, stop, skus, integer)


@njit(cache=True, error_model="numpy", nogil=True)
def all_positive_zero(values):
    """Whether every one of ``values`` (2-D) is +0.0 (counted without an early exit, which the
    compiler vectorises)."""
    other = 0
    for value in values.flat:
        other += (value != 0.0) | (math.copysign(1.0, value) < 0.0)
    return other == 0


@njit(cache=True, error_model="numpy", nogil=True)
def sourcing_state(
    need,
    integer,
    released,
    lane_capacity,
    supplier_capacity,
    purchase_supplier,
    purchase_location,
    transfer_capacity,
    on_hand,
    inbound,
    reserve,
    location_capacity,
    any_supplier_limit,
    any_storage_limit,
):
    """The state :func:`source_requests` starts from, as :meth:`Sourcing.request_numpy` computes
    it in numpy: (remaining need (D, S), units left per purchase lane (P,), per supplier × SKU,
    per transfer lane (X,), unreserved stock (D, S), storage room per DC (D,))."""
    n_loc, n_sku = need.shape
    remaining = np.empty((n_loc, n_sku))
    for d in range(n_loc):
        for s in range(n_sku):
            value = need[d, s]
            value = _maximum(value, 0.0) if np.isfinite(value) else 0.0
            remaining[d, s] = np.floor(value + 1e-9) if integer[s] else value
    n_lanes = released.shape[0]
    # No order released this period (all +0.0): what they take sums to +0.0, and taking
    # +0.0 (adding −0.0) leaves every limit as it is, so the released orders are not read.
    any_released = not all_positive_zero(released)
    released_units = np.zeros(n_lanes)
    if any_released:
        for p in range(n_lanes):
            released_units[p] = array_sum(released[p], 0, n_sku)
    lane_units = np.empty(n_lanes)
    for p in range(n_lanes):
        lane_units[p] = lane_capacity[p] - released_units[p]
    supplier_left = supplier_capacity.copy()
    if any_supplier_limit and any_released:
        for p in range(n_lanes):
            k = purchase_supplier[p]
            for s in range(n_sku):
                supplier_left[k, s] += -released[p, s]
    transfer_units = np.empty(transfer_capacity.shape[0])
    for x in range(transfer_capacity.shape[0]):
        transfer_units[x] = transfer_capacity[x]
    stock_left = np.empty((n_loc, n_sku))
    for d in range(n_loc):
        for s in range(n_sku):
            stock_left[d, s] = _maximum(on_hand[d, s] - reserve[d, s], 0.0)
    room = np.full(n_loc, np.inf)
    if any_storage_limit:
        row = np.empty(n_sku)
        for d in range(n_loc):
            for s in range(n_sku):
                row[s] = on_hand[d, s] + inbound[d, s]
            room[d] = location_capacity[d] - array_sum(row, 0, n_sku)
        if any_released:
            for p in range(n_lanes):
                room[purchase_location[p]] += -released_units[p]
    return remaining, lane_units, supplier_left, transfer_units, stock_left, room


@njit(cache=True, error_model="numpy", nogil=True)
def source_requests(
    ddot,
    remaining,
    lane_units,
    supplier_left,
    transfer_units,
    stock_left,
    room,
    money,
    requests,
    transfers,
    rank_start,
    kind,
    lane,
    location,
    owner,
    cell_start,
    skus,
    positions,
    unit_cost,
    moq_floor,
    rank_transfers,
    rank_orders,
    integer,
    fixed_cost,
    approval_limit,
    any_supplier_limit,
    any_storage_limit,
):
    """The rank loop of :meth:`Sourcing.request` on its prepared state; updates ``remaining``,
    the limits, ``requests`` and ``transfers`` (X, S) in place.

    Each option's units (its proposals summed, :func:`array_sum`) are kept in ``units``
    from the lane limits on, and summed again only where a step changed its proposals.
    """
    n_lanes = fixed_cost.shape[0]
    lane_value = np.zeros(n_lanes)
    lane_used = np.zeros(n_lanes, dtype=np.bool_)
    proposals = np.empty(skus.shape[0])
    units = np.empty(kind.shape[0])
    limit_approval = approval_limit < np.inf
    for r in range(rank_start.shape[0] - 1):
        first, last = rank_start[r], rank_start[r + 1]
        for o in range(first, last):
            d = location[o]
            for i in range(cell_start[o], cell_start[o + 1]):
                proposals[i] = remaining[d, skus[i]]
        # Per-SKU shared limits: a source DC's stock (transfers), a supplier's capacity (orders).
        for limited in (TRANSFER, ORDER):
            if limited == TRANSFER:
                if not rank_transfers[r]:
                    continue
                limit = stock_left
            else:
                if not (rank_orders[r] and any_supplier_limit):
                    continue
                limit = supplier_left
            asked = np.zeros_like(limit)
            asking = np.zeros(limit.shape[0], dtype=np.bool_)  # owners with an option here
            for o in range(first, last):
                if kind[o] == limited:
                    w = owner[o]
                    asking[w] = True
                    for i in range(cell_start[o], cell_start[o + 1]):
                        asked[w, skus[i]] += proposals[i]
            # The factor per owner × SKU (1 within the limit), in place of what was asked.
            factor = asked
            exceeded = 0
            for w in range(limit.shape[0]):
                if not asking[w]:
                    continue
                for s in range(limit.shape[1]):
                    over = asked[w, s] > limit[w, s]
                    exceeded += over
                    factor[w, s] = _maximum(limit[w, s], 0.0) / _maximum(asked[w, s], 1e-300) if over else 1.0
            # Where no SKU is over its limit every factor is 1 and the proposals stay as they
            # are (already whole where the SKU is: the need was rounded down, and every take
            # from it is whole).
            if exceeded == 0:
                continue
            for o in range(first, last):
                if kind[o] == limited:
                    w = owner[o]
                    for i in range(cell_start[o], cell_start[o + 1]):
                        s = skus[i]
                        q = proposals[i] * factor[w, s]
                        if integer[s]:
                            q = np.floor(q + 1e-9)
                        proposals[i] = q
        # Per-lane limits: capacity in units, the approval limit in value.
        for o in range(first, last):
            start, stop = cell_start[o], cell_start[o + 1]
            total = array_sum(proposals, start, stop - start)
            units[o] = total
            if total <= 0:
                continue
            ln = lane[o]
            if kind[o] == TRANSFER:
                cap = transfer_units[ln]
            else:
                cap = lane_units[ln]
                if limit_approval:
                    value = dot(ddot, proposals, start, unit_cost, start, stop - start)
                    allowed = approval_limit - fixed_cost[ln] - lane_value[ln]
                    if value > allowed:
                        _scale(proposals, start, stop, _builtin_max(allowed, 0.0), value, skus, integer)
                        total = units[o] = array_sum(proposals, start, stop - start)
            if total > cap:
                _scale(proposals, start, stop, _builtin_max(cap, 0.0), total, skus, integer)
                units[o] = array_sum(proposals, start, stop - start)
        # Storage room at each destination.
        if any_storage_limit:
            into = np.zeros(room.shape[0])
            for o in range(first, last):
                into[location[o]] += units[o]
            for o in range(first, last):
                d = location[o]
                if into[d] > room[d]:
                    start, stop = cell_start[o], cell_start[o + 1]
                    _scale(proposals, start, stop, _builtin_max(room[d], 0.0), into[d], skus, integer)
                    units[o] = array_sum(proposals, start, stop - start)
        # Budget and cash headroom over all purchase orders (fixed costs of newly used lanes first).
        if np.isfinite(money) and rank_orders[r]:
            value, fixed = 0.0, 0.0
            for o in range(first, last):
                if kind[o] == ORDER:
                    start, stop = cell_start[o], cell_start[o + 1]
                    if units[o] > 0:
                        value += dot(ddot, proposals, start, unit_cost, start, stop - start)
                        fixed += 0.0 if lane_used[lane[o]] else fixed_cost[lane[o]]
            if value + fixed > money:
                factor = _builtin_max(money - fixed, 0.0) / value if value > 0 else 0.0
                for o in range(first, last):
                    if kind[o] == ORDER:
                        start, stop = cell_start[o], cell_start[o + 1]
                        for i in range(start, stop):
                            q = proposals[i] * factor
                            if integer[skus[i]]:
                                q = np.floor(q + 1e-9)
                            proposals[i] = q
                        units[o] = array_sum(proposals, start, stop - start)
        # Minimum order quantities: a smaller order is left to the next lane.
        for o in range(first, last):
            if kind[o] == ORDER:
                dropped = 0  # proposals set to 0 that were not 0 (counted without a branch)
                for i in range(cell_start[o], cell_start[o + 1]):
                    q = proposals[i]
                    below = q < moq_floor[i]
                    dropped += below & (q != 0.0)
                    proposals[i] = 0.0 if below else q
                if dropped:
                    units[o] = array_sum(proposals, cell_start[o], cell_start[o + 1] - cell_start[o])
        # Commit this rank (each array's cells updated in the same order as one loop per array).
        for o in range(first, last):
            start, stop = cell_start[o], cell_start[o + 1]
            total = units[o]
            if total <= 0:
                continue
            d, ln, w = location[o], lane[o], owner[o]
            room[d] -= total
            if kind[o] == TRANSFER:
                transfer_units[ln] -= total
                for i in range(start, stop):
                    q, s = proposals[i], skus[i]
                    requests[positions[i]] += q
                    remaining[d, s] -= q
                    stock_left[w, s] -= q
                    transfers[ln, s] += q
            else:
                for i in range(start, stop):
                    q = proposals[i]
                    requests[positions[i]] += q
                    remaining[d, skus[i]] -= q
                value = dot(ddot, proposals, start, unit_cost, start, stop - start)
                money -= value + (0.0 if lane_used[ln] else fixed_cost[ln])
                lane_used[ln] = True
                lane_units[ln] -= total
                lane_value[ln] += value
                if any_supplier_limit:
                    for i in range(start, stop):
                        supplier_left[w, skus[i]] -= proposals[i]


@njit(cache=True, error_model="numpy", nogil=True)
def _probe(ddot, x, y, lengths):
    """(dot, sum) of ``x[:n]``, ``y[:n]`` per ``n`` in ``lengths``, for :func:`exact_arithmetic`."""
    out = np.empty((lengths.shape[0], 2))
    for k in range(lengths.shape[0]):
        n = lengths[k]
        out[k, 0] = dot(ddot, x, 0, y, 0, n)
        out[k, 1] = array_sum(x, 0, n)
    return out


def exact_arithmetic() -> int:
    """The ddot address when the compiled sums and dot products equal numpy's here, else 0."""
    address = numpy_ddot_address()
    if not address:
        return 0
    rng = np.random.default_rng(12345)
    x = rng.normal(size=3000) * 1e3
    y = rng.uniform(0.0, 100.0, size=3000)
    lengths = np.array([1, 3, 7, 8, 9, 15, 16, 17, 100, 127, 128, 129, 255, 256, 1000, 1999, 3000], dtype=np.int64)
    out = _probe(address, x, y, lengths)
    for k, n in enumerate(lengths.tolist()):
        if out[k, 0] != float(x[:n] @ y[:n]) or out[k, 1] != float(x[:n].sum()):
            return 0
    return address


@njit(cache=True, error_model="numpy", nogil=True)
def _minimum(a, b):
    """``np.minimum`` of two floats (NaN wins; ties keep ``a``)."""
    if a <= b or a != a:
        return a
    return b


@njit(cache=True, error_model="numpy", nogil=True)
def _available_to_customers(on_hand, arriving, transfers, transfer_source):
    """Stock each DC can sell this period (D, S): on hand + ``arriving`` now − ``transfers``
    (X, S) leaving now (as ``PlanningView.available_to_customers``)."""
    n_loc, n_sku = on_hand.shape
    available = np.empty((n_loc, n_sku))
    for d in range(n_loc):
        for s in range(n_sku):
            available[d, s] = on_hand[d, s] + arriving[d, s]
    for x in range(transfers.shape[0]):
        d = transfer_source[x]
        for s in range(n_sku):
            available[d, s] += -transfers[x, s]
    return available


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _lane_cap(share, stock, integer):
    """The most a lane may receive of ``stock``: its channel's maximum ``share`` of it, whole
    units rounded down where the SKU is ``integer`` (as ``PlanningView.channel_caps``)."""
    if share < 1.0:
        return np.floor(share * stock + 1e-9) if integer else share * stock
    return stock


@njit(cache=True, error_model="numpy", nogil=True)
def open_allocation(
    on_hand, arriving, transfers, transfer_source, locations, max_share, factor, integer, positions, requests
):
    """The ``open`` allocation of a capped rule policy, as its numpy code computes it.

    Stock available to customers (D, S): on hand + ``arriving`` now − ``transfers`` (X, S)
    leaving now; each allocation lane ``l`` (of DC ``locations[l]``) gets
    ``floor(factor[l] × available)`` within its channel's maximum share ``max_share[l]``
    (whole units rounded down), written to ``requests[positions[l, s]]``.
    """
    available = _available_to_customers(on_hand, arriving, transfers, transfer_source)
    for lane in range(locations.shape[0]):
        d = locations[lane]
        share = max_share[lane]
        for s in range(available.shape[1]):
            stock = available[d, s]
            requests[positions[lane, s]] = _minimum(np.floor(factor[lane] * stock), _lane_cap(share, stock, integer[s]))


@njit(cache=True, error_model="numpy", nogil=True)
def weighted_allocation(
    on_hand,
    arriving,
    transfers,
    transfer_source,
    locations,
    max_share,
    integer,
    weights,
    total,
    even_share,
    positions,
    requests,
):
    """A capped rule policy's split by weight (``proportional``, ``fixed_split``), as its numpy
    code computes it.

    Stock available to customers (D, S): on hand + ``arriving`` now − ``transfers`` (X, S)
    leaving now. Allocation lane ``l`` (of DC ``locations[l]``) gets ``floor(share ×
    available)``, its share ``weights[l] / total[l]`` (``total`` (L, S): the weights of its
    DC's lanes together) or ``even_share[l]`` where that total is not positive, within its
    channel's maximum share ``max_share[l]`` of the available stock (whole units rounded
    down), written to ``requests[positions[l, s]]``.
    """
    available = _available_to_customers(on_hand, arriving, transfers, transfer_source)
    for lane in range(locations.shape[0]):
        d = locations[lane]
        limit = max_share[lane]
        even = even_share[lane]
        for s in range(available.shape[1]):
            stock = available[d, s]
            lane_total = total[lane, s]
            share = weights[lane, s] / _maximum(lane_total, 1e-300) if lane_total > 0 else even
            requests[positions[lane, s]] = _minimum(np.floor(share * stock), _lane_cap(limit, stock, integer[s]))


@njit(cache=True, error_model="numpy", nogil=True)
def position_gap(target, on_hand, inbound, backlog_at, held, with_held, gap):
    """``target − position`` per DC × SKU (D, S) into ``gap``, element by element as numpy computes
    ``target - (on_hand + inbound - backlog_at [+ held])`` (``held`` added only ``with_held``):
    the inventory position's gap to an order-up-to level, without the temporaries."""
    n_loc, n_sku = gap.shape
    for d in range(n_loc):
        for s in range(n_sku):
            position = on_hand[d, s] + inbound[d, s] - backlog_at[d, s]
            if with_held:
                position = position + held[d, s]
            gap[d, s] = target[d, s] - position


@njit(cache=True, error_model="numpy", nogil=True)
def plan_sources(
    ddot,
    need,
    released,
    on_hand,
    inbound,
    money,
    requests,
    transfers,
    lane_capacity,
    supplier_capacity,
    purchase_supplier,
    purchase_location,
    transfer_capacity,
    reserve,
    location_capacity,
    rank_start,
    kind,
    lane,
    location,
    owner,
    cell_start,
    skus,
    positions,
    unit_cost,
    moq_floor,
    rank_transfers,
    rank_orders,
    integer,
    fixed_cost,
    approval_limit,
    any_supplier_limit,
    any_storage_limit,
):
    """:meth:`Sourcing.request` in one call: :func:`sourcing_state`, then :func:`source_requests`
    (its state stays inside: no arrays handed back to Python)."""
    remaining, lane_units, supplier_left, transfer_units, stock_left, room = sourcing_state(
        need,
        integer,
        released,
        lane_capacity,
        supplier_capacity,
        purchase_supplier,
        purchase_location,
        transfer_capacity,
        on_hand,
        inbound,
        reserve,
        location_capacity,
        any_supplier_limit,
        any_storage_limit,
    )
    source_requests(
        ddot,
        remaining,
        lane_units,
        supplier_left,
        transfer_units,
        stock_left,
        room,
        money,
        requests,
        transfers,
        rank_start,
        kind,
        lane,
        location,
        owner,
        cell_start,
        skus,
        positions,
        unit_cost,
        moq_floor,
        rank_transfers,
        rank_orders,
        integer,
        fixed_cost,
        approval_limit,
        any_supplier_limit,
        any_storage_limit,
    )


@njit(cache=True, error_model="numpy", nogil=True)
def plan_sources_packed(ddot, plan, need, released, on_hand, inbound, money, requests, transfers):
    """:func:`plan_sources` with the network's constants packed (a
    :class:`~invalloc.sim.kernels.packing.SourcingArrays`): one argument instead of 24."""
    plan_sources(
        ddot,
        need,
        released,
        on_hand,
        inbound,
        money,
        requests,
        transfers,
        plan.lane_capacity,
        plan.supplier_capacity,
        plan.purchase_supplier,
        plan.purchase_location,
        plan.transfer_capacity,
        plan.reserve,
        plan.location_capacity,
        plan.rank_start,
        plan.kind,
        plan.lane,
        plan.location,
        plan.owner,
        plan.cell_start,
        plan.skus,
        plan.positions,
        plan.unit_cost,
        plan.moq_floor,
        plan.rank_transfers,
        plan.rank_orders,
        plan.integer,
        plan.fixed_cost,
        plan.approval_limit,
        plan.any_supplier_limit,
        plan.any_storage_limit,
    )
