"""Rule-based policies planners use today: base stock, (s, S), allocation rules
(:class:`~invalloc.sim.rule_policy.RuleBasedPolicy`, which lives beside the simulator so the
environment can anchor learned actions on it), fixed quantities and replayed actions."""

from __future__ import annotations

import numpy as np

from invalloc.sim.network import Network
from invalloc.sim.policy import PolicyError
from invalloc.sim.rule_policy import RuleBasedPolicy
from invalloc.sim.simulator import Simulator

__all__ = ["FixedPolicy", "ReplayPolicy", "RuleBasedPolicy"]


class FixedPolicy:
    """The same requested quantities every period (one value, or one per decision)."""

    def __init__(self, quantities: list[float]) -> None:
        self.name = "fixed"
        self.quantities = quantities

    def reset(self, network: Network, seed: int | None = None) -> None:
        if len(self.quantities) not in (1, network.n_decisions):
            raise PolicyError(
                f"quantities: {len(self.quantities)} given, the scenario has {network.n_decisions} decisions "
                f"({', '.join(network.decision_names[:4])}{', …' if network.n_decisions > 4 else ''})"
            )
        self.vector = np.broadcast_to(np.asarray(self.quantities, dtype=float), (network.n_decisions,)).copy()

    def act(self, simulator: Simulator) -> np.ndarray:
        return self.vector.copy()


class ReplayPolicy:
    """Replays an actions CSV: a ``period`` column (from 0) and one column per decision, in units."""

    def __init__(self, path: str) -> None:
        self.name = "replay"
        self.path = path

    def reset(self, network: Network, seed: int | None = None) -> None:
        from invalloc.baselines.actions import read_actions

        self.actions = read_actions(self.path, network.decision_names)

    def act(self, simulator: Simulator) -> np.ndarray:
        if simulator.period not in self.actions:
            raise PolicyError(f"{self.path}: no row for period {simulator.period}")
        return self.actions[simulator.period].copy()
