"""An independent transcription of OR-Gym InvManagement's period, from the rules in docs/validation.md §2.

Used only to check the simulator's mirror scenarios period by period. Arrays are per stage.
"""

from __future__ import annotations

import numpy as np

PRICE = np.array([2.0, 1.5, 1.0, 0.75])
REPLENISHMENT_COST = np.array([1.5, 1.0, 0.75, 0.5])
PENALTY = np.array([0.10, 0.075, 0.05, 0.025])
HOLDING = np.array([0.15, 0.10, 0.05, 0.0])
CAPACITY = np.array([100.0, 90.0, 80.0])
LEAD_TIME = [3, 5, 10]
OPENING = np.array([100.0, 100.0, 200.0])
DISCOUNT = 0.97


def orgym_rewards(demand: list[float], actions: np.ndarray, backlog: bool) -> np.ndarray:
    """Discounted reward per period for demand (H,) and actions (H, 3)."""
    periods = len(demand)
    on_hand = OPENING.copy()
    shipped = np.zeros((periods, 3))
    customer_backlog = 0.0
    order_backlog = np.zeros(3)
    rewards = np.zeros(periods)
    for n in range(periods):
        request = np.maximum(np.floor(actions[n]), 0.0) + (order_backlog if backlog else 0.0)  # 1
        order = np.minimum(request, CAPACITY)  # 2
        upstream = np.append(on_hand[1:], np.inf)
        order = np.minimum(order, upstream)  # 3: before the supplier's own arrivals
        shipped[n] = order
        for i in range(3):  # 4
            if n - LEAD_TIME[i] >= 0:
                on_hand[i] += shipped[n - LEAD_TIME[i]][i]
        wanted = demand[n] + customer_backlog  # 5
        sale = min(on_hand[0], wanted)  # 6
        on_hand -= np.array([sale, order[0], order[1]])
        unfilled = np.append(wanted - sale, request - order)  # 7
        if backlog:
            customer_backlog, order_backlog = unfilled[0], unfilled[1:]
        sales = np.array([sale, *order])
        costs = REPLENISHMENT_COST * np.array([*order, order[2]])
        holding = HOLDING * np.append(on_hand, 0.0)
        rewards[n] = DISCOUNT**n * np.sum(PRICE * sales - costs - PENALTY * unfilled - holding)
    return rewards
