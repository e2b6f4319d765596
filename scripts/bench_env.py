"""Environment throughput, and what the environment costs inside SB3 PPO training.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_env.py [--scenario retail] [--timesteps 32768] [--json]

Prints, measured in one run:

- environment steps per second on the scenario with random actions (resets included);
- SB3 PPO training throughput (timesteps per second, SB3's default hyper-parameters, one
  env in a SubprocVecEnv as for training, or ``--vec-env dummy``) on the scenario, and on a
  no-op environment with identical observation and action spaces and episode length;
- their ratio: PPO on the scenario ÷ PPO on the no-op env. 1.0 means the environment
  costs nothing; the target is ≥ 0.7 (the environment takes under 30% of training time).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from invalloc.env import AllocationEnv  # noqa: E402

TARGET_RATIO = 0.7


class NoOpEnv(gym.Env):
    """Same spaces and episode length as a given env; does no work at all."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, periods: int) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.periods = periods
        self._zeros = np.zeros(observation_space.shape, dtype=np.float32)
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self._zeros, {}

    def step(self, action):
        self._t += 1
        return self._zeros, 0.0, False, self._t >= self.periods, {}


def env_steps_per_second(scenario: str, seconds: float) -> float:
    env = AllocationEnv(scenario)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    steps, episodes = 0, 0
    end = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
        steps += 1
        if terminated or truncated:
            episodes += 1
            env.reset(seed=episodes)
    return steps / (time.perf_counter() - start)


def ppo_throughput(make_env, timesteps: int, vec_env: str, seed: int = 0) -> float:
    """Timesteps per second of PPO.learn (CPU, one env, SB3 defaults), after one warm-up rollout."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    # One intra-op thread: tiny MLP batches gain nothing from more, and on a busy 2-core
    # machine OpenMP threads spinning against other processes slow each layer 50-fold.
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    vec = SubprocVecEnv([make_env]) if vec_env == "subproc" else DummyVecEnv([make_env])
    # SB3's default PPO hyper-parameters (n_steps=2048, batch_size=64, n_epochs=10).
    model = PPO("MlpPolicy", vec, seed=seed, device="cpu", verbose=0)
    model.learn(total_timesteps=2048)  # warm-up: first rollout and update
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    vec.close()
    return timesteps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="retail")
    # Long enough that start-up (first rollout, warm caches) does not weigh on either side.
    parser.add_argument("--timesteps", type=int, default=32768)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of the env-only measurement")
    parser.add_argument(
        "--vec-env",
        choices=["subproc", "dummy", "both"],
        default="both",
        help="SubprocVecEnv (the env steps in its own process), DummyVecEnv (in-process), or both",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    reference = AllocationEnv(args.scenario)
    periods = reference.simulator.periods
    steps = env_steps_per_second(args.scenario, args.seconds)
    make_noop = partial(NoOpEnv, reference.observation_space, reference.action_space, periods)
    kinds = ["dummy", "subproc"] if args.vec_env == "both" else [args.vec_env]
    rows = []
    for kind in kinds:
        real = ppo_throughput(partial(AllocationEnv, args.scenario), args.timesteps, kind)
        noop = ppo_throughput(make_noop, args.timesteps, kind)
        rows.append(
            {
                "vec_env": kind,
                "ppo": real,
                "ppo_noop_env": noop,
                "ratio": real / noop,
                "target_met": real / noop >= TARGET_RATIO,
            }
        )
    result = {
        "scenario": args.scenario,
        "observation_size": int(reference.observation_space.shape[0]),
        "action_size": int(reference.action_space.shape[0]),
        "env_steps_per_second": steps,
        "timesteps": args.timesteps,
        "ppo": rows,
        "target_ratio": TARGET_RATIO,
    }
    if args.json:
        print(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"{args.scenario}: observation {result['observation_size']}, action {result['action_size']}; "
        f"env steps/s (random actions, resets included): {steps:,.0f}"
    )
    table = Table(title=f"PPO training throughput, {args.timesteps} timesteps, SB3 defaults, CPU")
    for column in ("vec env", "PPO on the scenario (steps/s)", "PPO on a no-op env (steps/s)", "ratio"):
        table.add_column(column, justify="right")
    for row in rows:
        verdict = "met" if row["target_met"] else "NOT met"
        table.add_row(
            row["vec_env"],
            f"{row['ppo']:,.0f}",
            f"{row['ppo_noop_env']:,.0f}",
            f"{row['ratio']:.2f} (target ≥ {TARGET_RATIO}: {verdict})",
        )
    console.print(table)


if __name__ == "__main__":
    main()
