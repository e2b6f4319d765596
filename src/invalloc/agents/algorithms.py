"""The SB3 algorithms an experiment may name, and which hyper-parameters each accepts."""

from __future__ import annotations

import inspect
from typing import Any

#: Algorithms an experiment may name: stable-baselines3's PPO, A2C, SAC and TD3, and ARS
#: (sb3-contrib's Augmented Random Search on common random numbers, :mod:`invalloc.agents.ars`).
#: All take Box actions.
ALGORITHMS = ("PPO", "A2C", "SAC", "TD3", "ARS")

# Set by the trainer, never by an experiment's ``hyperparameters``.
_RESERVED = {"policy", "env", "seed", "device", "verbose", "tensorboard_log", "policy_kwargs", "_init_setup_model"}


def algorithm_class(name: str) -> Any:
    """The SB3 class for ``name`` (one of :data:`ALGORITHMS`)."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r} (choose from {', '.join(ALGORITHMS)})")
    if name == "ARS":
        from invalloc.agents.ars import CommonRandomARS

        return CommonRandomARS
    import stable_baselines3

    return getattr(stable_baselines3, name)


def accepted_hyperparameters(name: str) -> list[str]:
    """Constructor arguments of algorithm ``name`` that an experiment may set."""
    signature = inspect.signature(algorithm_class(name).__init__)
    return sorted(p for p in signature.parameters if p not in _RESERVED and p != "self")


def is_on_policy(name: str) -> bool:
    return name in ("PPO", "A2C")


def has_noise_scale(name: str) -> bool:
    """Whether the algorithm's policy takes ``log_std_init`` (Gaussian actions)."""
    return name in ("PPO", "A2C", "SAC")
