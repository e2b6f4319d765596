"""Augmented Random Search on common random numbers: the learner for anchored policies.

An anchored policy starts *at* a tuned rule (action 0 is the rule, :mod:`invalloc.env.actions`)
and has to find corrections worth a few per cent of an episode's profit, while one episode's
profit varies by about 1% with the demand drawn. A policy-gradient learner (PPO) estimates its
gradient from per-step advantages that this demand noise swamps; on ``retail`` and on OR-Gym
its deterministic policy drifts *below* the rule it started from.

Augmented Random Search (Mania, Guy and Recht 2018; sb3-contrib's :class:`~sb3_contrib.ARS`)
perturbs the policy's weights in ``n_delta`` random directions, runs each perturbation ``+δ`` and
``−δ`` for ``n_eval_episodes`` episodes, and steps along the directions whose returns differ
most. Here every candidate of one update runs on **the same demand** (common random numbers,
as the comparisons do): :class:`CommonRandomNumbers` reseeds the environments with the update's
seed at each candidate's first reset, so ``return(+δ) − return(−δ)`` measures the policy's
difference rather than the demand's. The seed of update ``k`` is drawn from the experiment's
seed and ``k``, so a resumed run continues the same sequence, and the same seed gives the same
training.

The policy's output layer starts at 0, so the first policy *is* the anchor, and every update
has to earn its place against it.

The policy (:class:`ScaledARSPolicy`) is ARS's: linear (``net_arch: []``) or an MLP on the
normalised observation, squashed by ``tanh``, except that the observation is multiplied by
``feature_scale`` (default ``1/√n_features``) first. ARS perturbs every weight by the same
``delta_std``; unscaled, the ``n`` weights of one action would move it ``√n`` times more than
its bias, so exploration would be all state-dependent noise and the bias (the correction that
holds in every state, which is most of what there is to gain) would barely be searched.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib import ARS
from sb3_contrib.ars.policies import ARSPolicy
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper


class ScaledARSPolicy(ARSPolicy):
    """ARS's policy with the observation scaled by ``feature_scale`` before the first layer.

    :param feature_scale: factor on every (normalised) observation entry; None: ``1/√n_features``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        net_arch: list[int] | None = None,
        activation_fn: type[torch.nn.Module] = torch.nn.ReLU,
        feature_scale: float | None = None,
    ) -> None:
        super().__init__(observation_space, action_space, net_arch, activation_fn)
        if feature_scale is None:
            feature_scale = 1.0 / math.sqrt(max(self.features_dim, 1))
        if not (math.isfinite(feature_scale) and feature_scale > 0):
            raise ValueError(f"feature_scale={feature_scale!r}: must be a finite number > 0")
        self.feature_scale = float(feature_scale)
        # The output layer starts at 0, so the policy starts at action 0 (for an anchored
        # policy: the rule) while an MLP's hidden layers keep their random initialisation,
        # which gives the search state-dependent features to weigh from the first update.
        output = [module for module in self.action_net if isinstance(module, torch.nn.Linear)][-1]
        with torch.no_grad():
            output.weight.zero_()
            if output.bias is not None:
                output.bias.zero_()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "feature_scale": self.feature_scale}

    def forward(self, obs: Any) -> torch.Tensor:
        features = self.extract_features(obs, self.features_extractor) * self.feature_scale
        return self.action_net(features)


class CommonRandomNumbers(VecEnvWrapper):
    """Every explicit ``reset()`` restarts each sub-environment from the current block's seed.

    Auto-resets inside an evaluation continue each sub-environment's own generator, so the
    sequence of episodes after a reset is the same for every candidate evaluated in a block.
    """

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.block_seed = 0

    def reset(self) -> Any:
        self.venv.seed(self.block_seed)
        return self.venv.reset()

    def step_wait(self) -> Any:
        return self.venv.step_wait()


def block_seed(seed: int | None, update: int) -> int:
    """The demand seed of update ``update`` of a run seeded ``seed`` (independent of the host)."""
    entropy = [int(seed or 0), int(update)]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0] >> 1)


def find_wrapper(env: VecEnv) -> CommonRandomNumbers | None:
    """The :class:`CommonRandomNumbers` wrapper inside ``env``'s wrapper chain, or None."""
    while env is not None:
        if isinstance(env, CommonRandomNumbers):
            return env
        env = getattr(env, "venv", None)
    return None


class CommonRandomARS(ARS):
    """sb3-contrib's ARS whose candidates of one update share their demand (see the module docstring).

    Without a :class:`CommonRandomNumbers` wrapper in its environment it is plain ARS.
    ``MlpPolicy`` is :class:`ScaledARSPolicy`.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {**ARS.policy_aliases, "MlpPolicy": ScaledARSPolicy}

    def _setup_model(self) -> None:
        # ScaledARSPolicy already starts at action 0; zeroing every weight (ARS's zero_policy)
        # would also zero an MLP's hidden layers, whose outputs would then stay 0 at first order.
        zero_policy, self.zero_policy = self.zero_policy, False
        try:
            super()._setup_model()
        finally:
            self.zero_policy = zero_policy

    def _do_one_update(self, callback: Any, async_eval: Any) -> None:
        wrapper = find_wrapper(self.env)
        if wrapper is not None:
            wrapper.block_seed = block_seed(self.seed, self._n_updates)
        super()._do_one_update(callback, async_eval)


__all__ = ["CommonRandomARS", "CommonRandomNumbers", "ScaledARSPolicy", "block_seed", "find_wrapper"]
