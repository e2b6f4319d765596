"""The policy interface shared by baselines, learned agents and rule tables.

A policy looks at the simulator's state at the decision point and returns *requested*
quantities, one per decision variable (``network.decision_names``), in units. The
feasibility layer turns requests into executable decisions, so a policy never needs to
know the governance rules to be safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from invalloc.sim.network import Network
    from invalloc.sim.simulator import Simulator


@runtime_checkable
class Policy(Protocol):
    """Anything with ``reset`` and ``act`` is a policy."""

    name: str

    def reset(self, network: Network, seed: int | None = None) -> None:
        """Prepare for a new episode on ``network``."""

    def act(self, simulator: Simulator) -> np.ndarray:
        """Requested quantities (n_decisions,) in units at the current decision point."""


class PolicyError(ValueError):
    """A policy name or parameter that cannot be used; the message names it.

    Commands print it as one ``error:`` line and exit with :attr:`exit_code`: 2 (bad input)
    unless a subclass reports a failure that is not the user's input (1).
    """

    exit_code = 2
