"""The Gymnasium environment (``invalloc/Allocation-v0``) over the simulator.

:class:`AllocationEnv` (gymnasium, numba, the simulator) loads on first use, so the light
modules of this layer (:mod:`invalloc.env.feature_definitions`) import with numpy alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invalloc.env.allocation_env import AllocationEnv

__all__ = ["AllocationEnv"]


def __getattr__(name: str) -> Any:
    if name == "AllocationEnv":
        from invalloc.env.allocation_env import AllocationEnv

        return AllocationEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
