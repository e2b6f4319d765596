"""The Gymnasium environment (``invalloc/Allocation-v0``) over the simulator."""

from invalloc.env.allocation_env import AllocationEnv

__all__ = ["AllocationEnv"]
