"""A whole period in one compiled call: the business steps of the five actors, in their order.

The simulator's actors (:mod:`invalloc.sim.simulator`) each make one compiled call a period;
without an audit log to write between them, :func:`run_period` makes the same calls in the
same order from compiled code, which saves the four hand-overs to Python (``scripts/bench_env.py``).
"""

from __future__ import annotations

from numba import njit

from invalloc.sim.kernels.customers import serve_period
from invalloc.sim.kernels.decision_point import decision_point
from invalloc.sim.kernels.packing import borrowed
from invalloc.sim.kernels.period_close import close_books
from invalloc.sim.kernels.receiving import put_away
from invalloc.sim.kernels.suppliers import supply_orders

#: How many figures :func:`run_period` writes (money, but for the expired units among close_books').
N_FIGURES = 20


@njit(cache=True, error_model="numpy", nogil=True)
def run_period(
    ep,
    state,
    flat,
    open_requests,
    budget,
    headroom,
    transfer_leads,
    sales_leads,
    period,
    outputs,
    new_demand,
    outcome,
    figures,
):
    """The period's :func:`~invalloc.sim.kernels.decision_point`, the suppliers'
    :func:`~invalloc.sim.kernels.suppliers.supply_orders` (drawing from ``state``), the DCs'
    :func:`~invalloc.sim.kernels.receiving.put_away`, the customers'
    :func:`~invalloc.sim.kernels.customers.serve_period` and the finance team's
    :func:`~invalloc.sim.kernels.period_close.close_books`, with the lead times given.

    ``outputs`` are the decision's arrays (:meth:`~invalloc.sim.feasibility.FeasibilityLayer.new_outputs`:
    requested, orders, delayed, transfers, allocations, executed, shortfall, log) and
    ``outcome`` the customers' (served, served new, short). Writes the period's figures into
    ``figures`` (:data:`N_FIGURES`,): the decision's purchase value, shortfall penalty and
    transfer freight; the suppliers' goods, fixed ordering cost and freight; the customers'
    penalty for units short, sales value and freight; ``close_books``' eleven figures.
    Returns False, after the suppliers' step, if the cost layers have too few slots for the
    arrivals (nothing put away): the caller grows them and finishes the period.
    """
    # The per-call arrays are Python's (held by the caller through the call): borrowed, so that
    # the steps' row views and hand-overs count no references to them.
    flat, open_requests, transfer_leads, sales_leads, new_demand, figures, state = borrowed(
        (flat, open_requests, transfer_leads, sales_leads, new_demand, figures, state)
    )
    outputs = borrowed(outputs)
    outcome = borrowed(outcome)
    value, penalty, _, transfer_freight = decision_point(
        ep, flat, open_requests, budget, headroom, transfer_leads, period, *outputs
    )
    figures[0] = value
    figures[1] = penalty
    figures[2] = transfer_freight
    goods, ordering, purchase_freight, _, _ = supply_orders(ep, state, outputs[1], period)
    figures[3] = goods
    figures[4] = ordering
    figures[5] = purchase_freight
    if put_away(ep, period % ep.transit_units.shape[0]) < 0.0:
        return False
    allocations, executed, log = outputs[4], outputs[5], outputs[7]
    short_penalty, sales_value, sales_freight, _ = serve_period(
        ep, new_demand, allocations, sales_leads, period, log, *outcome, executed
    )
    figures[6] = short_penalty
    figures[7] = sales_value
    figures[8] = sales_freight
    closing = close_books(ep, short_penalty + penalty, period)
    for i in range(len(closing)):
        figures[9 + i] = closing[i]
    return True
