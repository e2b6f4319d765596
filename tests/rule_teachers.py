"""Small numpy teachers for exporting real rule tables in tests without training an agent.

A :class:`FeatureTeacher` observes the rule table's own features and acts as a fixed,
state-dependent function of them (compact action: cover multipliers and channel weights):
extraction imitates it exactly, so its quality decides the table's. ``shift`` moves every
cover action: 0 orders to about the base cover, −1 to half of it (runs short).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from invalloc.config.loader import load_scenario
from invalloc.export.exporter import export_rule_table
from invalloc.export.extraction import ExtractionSettings

#: Quick extraction on `tiny`: every stage runs, in seconds; 10 held-out evaluation episodes.
TINY_SETTINGS = ExtractionSettings(
    max_rules=8,
    iterations=2,
    episodes_per_iteration=4,
    teacher_episodes=8,
    validation_episodes=2,
    evaluation_episodes=10,
    min_gain=0.0,
    seed=5,
)


class FeatureTeacher:
    """Acts on the rule features of `tiny` (see the module docstring)."""

    action_mode = "compact"
    anchor = None

    def __init__(self, scenario: str = "tiny", shift: float = 0.0) -> None:
        self.name = f"feature-teacher{shift:+.2f}"
        self.scenario_digest = load_scenario(scenario).digest
        self.shift = shift
        self._features = None

    def reset(self, network, seed=None) -> None:
        from invalloc.env.features import FeatureSet

        self._features = FeatureSet(network)
        self._names = self._features.names

    def observation(self, simulator) -> np.ndarray:
        return self._features.compute(simulator).astype(np.float32)

    def actions(self, observations: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(observations, dtype=np.float64))
        names = self._names
        cover = x[:, names.index("days_of_cover_dc_regular")]
        remaining = x[:, names.index("days_remaining")]
        actions = np.zeros((len(x), 5))
        # Order more when cover runs low, less in the last weeks (the stock would be left over).
        actions[:, 0] = np.where(cover < 14.0, 0.4, 0.0)
        actions[:, 1] = np.where(cover < 14.0, 0.2, -0.2)
        actions[:, 2] = np.where(remaining < 21.0, -0.6, 0.0)
        actions[:, :3] += self.shift
        actions[:, 3] = np.where(cover < 10.0, 0.3, 0.0)
        return np.clip(actions, -1.0, 1.0)


def export_tiny(out: Path, shift: float = 0.0, tracking_uri: str | None = None, register: str | None = None) -> dict:
    """Export the table of ``FeatureTeacher(shift)`` on `tiny` into ``out``; returns the manifest."""
    return export_rule_table(
        FeatureTeacher("tiny", shift),
        load_scenario("tiny"),
        out,
        TINY_SETTINGS,
        source={"teacher": f"feature-teacher{shift:+.2f}"},
        tracking_uri=tracking_uri,
        register=register,
    )


#: Small but complete extraction settings on `retail`: every stage runs, in seconds.
QUICK_RETAIL_SETTINGS = ExtractionSettings(
    max_rules=8,
    iterations=2,
    episodes_per_iteration=2,
    teacher_episodes=2,
    validation_episodes=1,
    evaluation_episodes=2,
    min_gain=0.0,
    seed=3,
)


def retail_ppo_teacher():
    """An SB3 PPO policy on `retail` after a few hundred steps: state-dependent, deterministic."""
    import torch
    from stable_baselines3 import PPO

    from invalloc.agents.learned import LearnedPolicy
    from invalloc.env import AllocationEnv

    torch.set_num_threads(1)
    model = PPO("MlpPolicy", AllocationEnv("retail"), device="cpu", seed=0, n_steps=128, batch_size=64, n_epochs=1)
    model.learn(128)
    with torch.no_grad():
        # A freshly trained policy barely depends on the state; sharpen it so that imitation has work to do.
        model.policy.action_net.weight.mul_(40.0)
    return LearnedPolicy.from_model(model, "retail")
