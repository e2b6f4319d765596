"""Environment throughput, and what the environment costs inside SB3 PPO training.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_env.py [--scenario retail] [--timesteps 16384] [--rounds 4]
        [--vec-env dummy|subproc|both] [--info lean|full] [--json]

Prints, measured in one run:

- environment steps per second on the scenario with random actions (resets included);
- SB3 PPO training throughput (timesteps per second, SB3's default hyper-parameters, one
  env in a DummyVecEnv and/or a SubprocVecEnv) on the scenario, and on a no-op environment
  with identical observation and action spaces and episode length;
- their ratio: PPO on the scenario ÷ PPO on the no-op env. 1.0 means the environment
  costs nothing; the target is ≥ 0.85 with DummyVecEnv (the environment takes under 15% of
  training time).

The two PPO runs alternate in ``--rounds`` rounds of ``timesteps / rounds`` each (after one
warm-up rollout each), so that a change in the machine's load weighs on both alike; the
ratio is of the totals, and the lowest and highest round's ratio show the spread. Both wall
time and this process's CPU time are measured: on a shared machine the CPU-time ratio is the
steadier one (SubprocVecEnv's worker is another process, so only its wall time counts). The
env is built as ``invalloc train`` builds it (``info="lean"``; ``--info full`` for the full
per-step info).
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

TARGET_RATIO = 0.85


class NoOpEnv(gym.Env):
    """Same spaces and episode length as a given env; does no work at all.

    SB3 wraps it exactly as the real env (the vector env alone: both are passed as VecEnvs);
    it returns a fresh float32 observation each step, as any env must (the caller may keep
    it), and an empty info: building and copying the real env's info is part of its cost.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, periods: int) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.periods = periods
        self._zeros = np.zeros(observation_space.shape, dtype=np.float32)
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self._zeros.copy(), {}

    def step(self, action):
        self._t += 1
        return self._zeros.copy(), 0.0, False, self._t >= self.periods, {}


def env_steps_per_second(scenario: str, seconds: float, info: str = "lean") -> float:
    env = AllocationEnv(scenario, info=info)
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


def _ppo(make_env, vec_env: str, seed: int):
    """SB3 PPO (CPU, one env, SB3 defaults) on ``make_env``, after one warm-up rollout and update."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    torch.manual_seed(seed)
    vec = SubprocVecEnv([make_env]) if vec_env == "subproc" else DummyVecEnv([make_env])
    # SB3's default PPO hyper-parameters (n_steps=2048, batch_size=64, n_epochs=10).
    model = PPO("MlpPolicy", vec, seed=seed, device="cpu", verbose=0)
    model.learn(total_timesteps=2048)  # warm-up: first rollout and update
    return model


def ppo_throughput(makers: dict, timesteps: int, rounds: int, vec_env: str, seed: int = 0) -> dict:
    """PPO timesteps per second on each of ``makers`` (name → env factory), wall and CPU, the
    runs alternating in ``rounds`` rounds (the order flipped every round)."""
    import torch

    # One intra-op thread: tiny MLP batches gain nothing from more, and on a busy 2-core
    # machine OpenMP threads spinning against other processes slow each layer 50-fold.
    torch.set_num_threads(1)
    models = {name: _ppo(make, vec_env, seed) for name, make in makers.items()}
    chunk = max(timesteps // rounds, 1)
    wall = {name: [] for name in models}
    cpu = {name: [] for name in models}
    for round_ in range(rounds):
        order = list(models) if round_ % 2 == 0 else list(reversed(models))
        for name in order:
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            models[name].learn(total_timesteps=chunk, reset_num_timesteps=False)
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
    for model in models.values():
        model.get_env().close()
    return {"chunk": chunk, "wall": wall, "cpu": cpu}


def _ratios(times: dict, real: str, noop: str) -> tuple[float, float, float]:
    """(ratio of the totals, lowest round's, highest round's): no-op time ÷ real time."""
    per_round = [n / r for n, r in zip(times[noop], times[real], strict=True)]
    return sum(times[noop]) / sum(times[real]), min(per_round), max(per_round)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="retail")
    # Long enough that start-up (first rollout, warm caches) does not weigh on either side.
    parser.add_argument("--timesteps", type=int, default=16384, help="PPO timesteps per env, all rounds together")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds of the two PPO runs")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of the env-only measurement")
    parser.add_argument(
        "--vec-env",
        choices=["subproc", "dummy", "both"],
        default="both",
        help="SubprocVecEnv (the env steps in its own process), DummyVecEnv (in-process), or both",
    )
    parser.add_argument(
        "--info", choices=["lean", "full"], default="lean", help="the env's per-step info (training uses lean)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    reference = AllocationEnv(args.scenario)
    periods = reference.simulator.periods
    steps = env_steps_per_second(args.scenario, args.seconds, args.info)
    makers = {
        "real": partial(AllocationEnv, args.scenario, info=args.info),
        "noop": partial(NoOpEnv, reference.observation_space, reference.action_space, periods),
    }
    kinds = ["dummy", "subproc"] if args.vec_env == "both" else [args.vec_env]
    rows = []
    for kind in kinds:
        measured = ppo_throughput(makers, args.timesteps, args.rounds, kind)
        total = measured["chunk"] * args.rounds
        ratio, low, high = _ratios(measured["wall"], "real", "noop")
        cpu_ratio, cpu_low, cpu_high = _ratios(measured["cpu"], "real", "noop")
        rows.append(
            {
                "vec_env": kind,
                "ppo": total / sum(measured["wall"]["real"]),
                "ppo_noop_env": total / sum(measured["wall"]["noop"]),
                "ratio": ratio,
                "ratio_rounds": [low, high],
                "cpu_ratio": cpu_ratio if kind == "dummy" else None,
                "cpu_ratio_rounds": [cpu_low, cpu_high] if kind == "dummy" else None,
                "target_met": ratio >= TARGET_RATIO,
            }
        )
    result = {
        "scenario": args.scenario,
        "info": args.info,
        "observation_size": int(reference.observation_space.shape[0]),
        "action_size": int(reference.action_space.shape[0]),
        "env_steps_per_second": steps,
        "timesteps": args.timesteps,
        "rounds": args.rounds,
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
    table = Table(
        title=f"PPO training throughput, {args.timesteps} timesteps in {args.rounds} alternating rounds, "
        f"SB3 defaults, CPU, info={args.info}"
    )
    columns = (
        "vec env",
        "PPO on the scenario (steps/s)",
        "PPO on a no-op env (steps/s)",
        "ratio (wall; rounds)",
        "ratio (CPU; rounds)",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        verdict = "met" if row["target_met"] else "NOT met"
        low, high = row["ratio_rounds"]
        cpu = "–"
        if row["cpu_ratio"] is not None:
            cpu = f"{row['cpu_ratio']:.2f} ({row['cpu_ratio_rounds'][0]:.2f}–{row['cpu_ratio_rounds'][1]:.2f})"
        table.add_row(
            row["vec_env"],
            f"{row['ppo']:,.0f}",
            f"{row['ppo_noop_env']:,.0f}",
            f"{row['ratio']:.2f} ({low:.2f}–{high:.2f}; target ≥ {TARGET_RATIO}: {verdict})",
            cpu,
        )
    console.print(table)


if __name__ == "__main__":
    main()
