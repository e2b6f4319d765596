"""Period close: bills paid and payments collected, holding cost, penalties, interest, expiry
and lower of cost and NRV, booked; the period's figures read from the ledger."""

from __future__ import annotations

from numba import njit

from invalloc.sim.kernels.cost_layers import expire_layer, write_down_layer
from invalloc.sim.kernels.dues import PAYABLES_BOOK, RECEIVABLES_BOOK, settle_due
from invalloc.sim.kernels.ledger import (
    CASH,
    COST_OF_GOODS_SOLD,
    HOLDING,
    INTEREST,
    INVENTORY,
    PAYABLES,
    PENALTIES,
    RECEIVABLES,
    REVENUE,
    WRITE_DOWNS,
    post,
)


@njit(cache=True, error_model="numpy", nogil=True)
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
    perishable_skus,
    nrv_skus,
):
    """Period close, booked: supplier bills ``paid`` and customer payments ``collected`` that
    fell due (money), holding cost on on-hand stock, penalties, interest on credit used,
    expiry write-offs and lower of cost and NRV.

    Only the SKUs in ``perishable_skus`` (int64, ascending: those with a shelf life) can have
    layers that expire, and only those in ``nrv_skus`` (ascending: NRV not +inf) layers that
    are written down; the other SKUs' layers are left as they are.

    Returns (holding, interest, write-downs incl. expiry, expired units), money and units.
    """
    post(balance, PAYABLES, CASH, paid)
    post(balance, CASH, RECEIVABLES, collected)
    # Holding cost on the stock before expiry, then expiry, then NRV, each money total a running
    # sum in DC × SKU order over the SKUs it can concern (the others would add nothing to it:
    # a layer of a SKU without shelf life never expires, none costs more than an NRV of +inf).
    n_loc, n_sku = on_hand.shape
    holding = 0.0
    for d in range(n_loc):
        for s in range(n_sku):
            holding += holding_cost[d, s] * on_hand[d, s]
    expired_cost = 0.0
    expired_total = 0.0
    if perishable:
        for d in range(n_loc):
            for s in perishable_skus:
                units, expired_cost = expire_layer(
                    layer_qty, layer_cost, layer_expires, used, d, s, period + 1, expired_cost
                )
                on_hand[d, s] -= units
                flows_out[d, s] += units
                expired_total += units
    write_down = 0.0
    if nrv_active:
        for d in range(n_loc):
            for s in nrv_skus:
                write_down = write_down_layer(layer_qty, layer_cost, used, d, s, net_realisable_value[s], write_down)
    post(balance, HOLDING, CASH, holding)
    post(balance, PENALTIES, CASH, penalty)
    interest = interest_rate * max(0.0, -balance[CASH])
    post(balance, INTEREST, CASH, interest)
    written = expired_cost if perishable else 0.0
    if nrv_active:
        written += write_down
    post(balance, WRITE_DOWNS, INVENTORY, written)
    return holding, interest, written, expired_total


@njit(cache=True, error_model="numpy", nogil=True)
def close_books(ep, penalty, period):
    """The bills and customer payments due this period settled (taken out of their books,
    :mod:`~invalloc.sim.kernels.dues`), then :func:`close_period` on the episode's state, and
    the period's figures from the ledger.

    Returns (paid, collected, holding, interest, write-downs, expired units, revenue, profit,
    cost of goods sold, cash, inventory value): money except the units. Profit sums the P&L
    accounts' movements in chart order, as ``sum()`` over them would.
    """
    paid = settle_due(ep.payable_due, ep.payable_amount, ep.due_count, PAYABLES_BOOK, period)
    collected = settle_due(ep.receivable_due, ep.receivable_amount, ep.due_count, RECEIVABLES_BOOK, period)
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
        ep.perishable_skus,
        ep.nrv_skus,
    )
    balance, start = ep.balance, ep.period_start
    pnl = 0.0
    for account in range(REVENUE, INTEREST + 1):
        pnl += balance[account] - start[account]
    revenue = -(balance[REVENUE] - start[REVENUE])
    cost_of_goods_sold = balance[COST_OF_GOODS_SOLD] - start[COST_OF_GOODS_SOLD]
    return (
        paid,
        collected,
        holding,
        interest,
        written,
        expired,
        revenue,
        -pnl,
        cost_of_goods_sold,
        balance[CASH],
        balance[INVENTORY],
    )
