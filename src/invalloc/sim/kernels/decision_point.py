"""The decision point: the period's books opened, the policy's request projected onto the
feasible set (:mod:`invalloc.sim.kernels.rules`) and the transfers sent
(:mod:`invalloc.sim.kernels.transfers`), in one compiled call."""

from __future__ import annotations

from numba import njit

from invalloc.sim.kernels.episode import any_nonzero
from invalloc.sim.kernels.rules import _project_with, clear_outputs, order_value_packed
from invalloc.sim.kernels.transfers import send_transfers


@njit(cache=True, error_model="numpy", nogil=True)
def decision_point(
    ep,
    flat,
    open_requests,
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
    (:func:`~invalloc.sim.kernels.rules.project`, on the episode's stock) and the transfers
    sent (:func:`~invalloc.sim.kernels.transfers.send_transfers`).

    The orders released from approval this period (``ep.held_*``) count as ordered; orders
    the approval rule delays are held until ``period`` + the delay (the ring's slots − 1),
    with their value. The outputs may come uninitialised (as for
    :func:`~invalloc.sim.kernels.rules.project_packed`). Returns (value of the purchase orders,
    penalty for the shortfalls, cost of the goods transferred, transfer freight), money.
    """
    releases = ep.held_release
    slots = releases.shape[0]
    now = period % slots
    released = ep.held_orders[now] if releases[now] == period else ep.no_release
    start, balance = ep.period_start, ep.balance
    for account in range(balance.shape[0]):
        start[account] = balance[account]
    clear_outputs(ep.rules, orders, delayed, transfers, allocations, log)
    value, penalty = _project_with(
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
    if ep.rules.approval_delays and any_nonzero(delayed):
        release = period + slots - 1
        slot = release % slots  # emptied when its last orders were released, a period ago
        orders_held = ep.held_orders[slot]
        for p in range(delayed.shape[0]):
            for s in range(delayed.shape[1]):
                orders_held[p, s] = 0.0 + delayed[p, s]
        ep.held_value[slot] = order_value_packed(ep.rules, orders_held)
        releases[slot] = release
    return value, penalty, goods, freight
