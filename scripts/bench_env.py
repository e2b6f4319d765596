"""Environment throughput, and what the environment costs inside SB3 PPO training.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_env.py [--scenario retail] [--timesteps 16384] [--rounds 8]
        [--vec-env dummy|subproc|both] [--info lean|full] [--seconds 3] [--breakdown] [--json]
        [--processes N [--plot FILE]] [--experiment NAME]

Prints, measured in one run:

- environment steps per second on the scenario with random actions (resets included);
- the median time of one env step taken back to back, taken right after a forward pass of
  the PPO policy, as in a rollout (how much colder the env runs between forward passes), and
  taken right after reading twice the L2 cache's size of memory (the same for the caches
  alone: where the two slow the env alike, the forward pass costs it through the caches);
- SB3 PPO training throughput (timesteps per second, SB3's default hyper-parameters, one
  env in a DummyVecEnv and/or a SubprocVecEnv) on the scenario, and on a no-op environment
  with identical observation and action spaces and episode length;
- their ratio: PPO on the scenario ÷ PPO on the no-op env. 1.0 means the environment
  costs nothing; the target is ≥ 0.85 with DummyVecEnv (the environment takes under 15% of
  training time);
- with ``--experiment NAME`` (a PPO experiment), the same ratio for PPO as ``invalloc train
  NAME`` trains: the experiment's hyper-parameters, policy, number of envs, vec env, VecMonitor
  and VecNormalize, on its scenario and observation, against no-op envs of the same spaces
  wrapped alike (another row; the scenario's rows keep SB3's defaults).

The two PPO runs alternate in ``--rounds`` rounds of ``timesteps / rounds`` each (after one
warm-up rollout each; the order flips every round, A B B A …), so that a change in the
machine's load weighs on both alike. Each round gives a ratio (no-op time ÷ scenario time
over the same number of timesteps); the headline is the **median of the rounds' ratios**,
which one round hit by another job's burst cannot move, with the lowest and highest round
and the ratio of the totals beside it. Both wall time and this process's CPU time are
measured: on a shared machine the CPU-time ratio is the one to read, and the verdict uses
it (SubprocVecEnv's worker is another process, so only its wall time counts there). The
machine's load average is printed before and after. The env is built as ``invalloc train``
builds it (``info="lean"``; ``--info full`` for the full per-step info). ``--breakdown``
adds the CPU time per timestep of each part of the env (action check and mapping, the
simulator's period with each actor's turn, its compiled business steps and lead-time draws, its
reset with the episode's demand draws, the observation) and of PPO (update, the rest of the
rollout), on both envs. Its timers cost ~1 µs a call, about twenty calls a step on the real env
only: read the ratio from a run without it.

One process's median still depends on the process: where its memory lies, and what the
machine's neighbours do in its minute (on this project's 2-core VM, runs a few minutes apart
gave 0.76 to 0.88 on the same code). ``--processes N`` runs the whole measurement in N fresh
processes one after the other and gives the verdict on the **median of their medians**, with
each process's figures and the lowest and highest beside it (with ``--json``: every process's
result under ``processes`` and the verdicts under ``over_processes``). ``--plot FILE`` (.png, .svg
or .pdf) also draws each process's median ratio against the median and the target.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from invalloc.agents.experiment import ExperimentError, load_experiment  # noqa: E402
from invalloc.config.loader import ScenarioError, load_scenario  # noqa: E402
from invalloc.env import AllocationEnv  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_processes import add_run_options, check_run_options, plot_processes, rerun_command, run_processes  # noqa: E402

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


def env_steps_per_second(scenario: str, seconds: float, info: str = "lean") -> dict[str, float]:
    """Steps per second of the env alone (random actions, resets included), on wall and CPU
    time, after one warm-up episode (which compiles the kernels on a cold cache)."""
    env = AllocationEnv(scenario, info=info)
    rng = np.random.default_rng(0)
    shape = env.action_space.shape
    env.reset(seed=0)
    while not env.step(rng.uniform(-1, 1, shape))[3]:
        pass
    env.reset(seed=1)
    steps, episodes = 0, 1
    start, start_cpu = time.perf_counter(), time.process_time()
    end = start + seconds
    while time.perf_counter() < end:
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, shape))
        steps += 1
        if terminated or truncated:
            episodes += 1
            env.reset(seed=episodes)
    return {"wall": steps / (time.perf_counter() - start), "cpu": steps / (time.process_time() - start_cpu)}


def l2_cache_bytes(base: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int:
    """The size of CPU 0's level-2 cache (Linux sysfs: ``base``), or 2 MiB where the system does not say."""
    for index in sorted(base.glob("index*")) if base.is_dir() else ():
        try:
            level = (index / "level").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if level == "2" and size[:-1].isdigit():
            return int(size[:-1]) * {"K": 1024, "M": 1024**2}.get(size[-1], 1)
    return 2 * 1024**2


def step_after_forward(scenario: str, info: str = "lean", steps: int = 2000, rounds: int = 3) -> dict[str, float]:
    """Median wall µs of one env step (random actions, resets included) taken back to back,
    taken right after one forward pass of an SB3 PPO policy (CPU, one thread) on the last
    observation, as each step of a rollout is, and taken right after reading a block of memory
    twice the size of the L2 cache (which evicts whatever the env kept there, and nothing else
    changes): blocks of ``steps`` of each, in turn, ``rounds`` times. The first two's ratio is
    how much slower the env runs between the policy's forward passes; where the third is as
    slow, the forward pass costs the env through the CPU caches alone."""
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    env = AllocationEnv(scenario, info=info)
    policy = PPO("MlpPolicy", env, seed=0, device="cpu", verbose=0).policy
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, *env.action_space.shape)).astype(np.float32)
    sweep_bytes = 2 * l2_cache_bytes()
    block = np.ones(sweep_bytes // 8)
    observation, _ = env.reset(seed=0)
    times: dict[str, list[float]] = {"alone": [], "after_forward": [], "after_sweep": []}
    for _ in range(rounds):
        for kind, samples in times.items():
            for action in actions:
                if kind == "after_forward":
                    with torch.no_grad():
                        policy(torch.as_tensor(observation[None]))
                elif kind == "after_sweep":
                    block.sum()
                start = time.perf_counter()
                observation, _, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    observation, _ = env.reset()
                samples.append(time.perf_counter() - start)
    alone, after, swept = (statistics.median(times[kind]) * 1e6 for kind in times)
    return {
        "alone_us": alone,
        "after_forward_us": after,
        "ratio": after / alone,
        "after_sweep_us": swept,
        "sweep_ratio": swept / alone,
        "sweep_bytes": sweep_bytes,
    }


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


def _experiment_ppo(loaded, noop: bool, seed: int = 0):
    """The experiment's own model (:func:`invalloc.agents.training.build_model`: its algorithm,
    hyper-parameters and policy) on its training vec env (:func:`~invalloc.agents.training.make_vec_env`:
    its number of envs, Dummy or Subproc, VecMonitor, VecNormalize), after one warm-up rollout
    and update; with ``noop`` every env is a :class:`NoOpEnv` of the same spaces and episode
    length, wrapped alike."""
    import torch

    from invalloc.agents.training import _make_env, build_model, make_vec_env

    torch.manual_seed(seed)
    make_env = None
    if noop:
        probe = _make_env(loaded)
        make_env = partial(NoOpEnv, probe.observation_space, probe.action_space, probe.simulator.periods)
    vec = make_vec_env(loaded, seed, make_env=make_env)
    model = build_model(loaded, vec)
    model.learn(total_timesteps=model.n_steps * vec.num_envs)  # warm-up: first rollout and update
    return model


#: What ``--breakdown`` times (CPU), as (class or module path, method or function, label); nested
#: ones (indented) are inside the others; entries sharing a label are summed.
BREAKDOWN = (
    ("stable_baselines3.common.vec_env.DummyVecEnv", "step_wait", "vec env step (all of it)"),
    ("stable_baselines3.PPO", "train", "PPO update"),
    ("invalloc.env.AllocationEnv", "step", "env step"),
    ("invalloc.env.AllocationEnv", "reset", "env reset"),
    ("invalloc.env.AllocationEnv", "_checked", "  action check"),
    ("invalloc.env.actions.ActionMapper", "requests", "  action mapping"),
    ("invalloc.sim.simulator.Simulator", "step", "  simulator period"),
    # Its actors' turns (each with its compiled step and lead-time draws; the rest of the period
    # is SimPy's calendar), or, without an audit log, the one turn that runs their business
    # steps in one compiled call. Wrapped at a simulator's reset, when its calendar makes them.
    ("invalloc.sim.simulator.Simulator", "_whole_period", "    the actors' turns in one"),
    ("invalloc.sim.simulator.Simulator", "_decision_point", "    decision point"),
    ("invalloc.sim.simulator.Simulator", "_suppliers", "    suppliers"),
    ("invalloc.sim.simulator.Simulator", "_receiving", "    receiving"),
    ("invalloc.sim.simulator.Simulator", "_customers", "    customers"),
    ("invalloc.sim.simulator.Simulator", "_finance", "    finance"),
    # The actors' compiled business steps (sim/kernels) and lead-time draws; the rest of an
    # actor's turn is the simulator's Python (books of payables and receivables, the report).
    ("invalloc.sim.kernels", "decision_point", "    compiled steps"),
    ("invalloc.sim.kernels", "ship_orders", "    compiled steps"),
    ("invalloc.sim.kernels", "put_away", "    compiled steps"),
    ("invalloc.sim.kernels", "serve_period", "    compiled steps"),
    ("invalloc.sim.kernels", "close_books", "    compiled steps"),
    ("invalloc.sim.kernels", "supply_orders", "    compiled steps"),
    ("invalloc.sim.kernels", "run_period", "    compiled steps"),
    ("invalloc.sim.simulator.Simulator", "_draw_leads", "    lead-time draws"),
    ("invalloc.env.observations.ObservationBuilder", "record_and_observe", "  record + observation"),
    ("invalloc.sim.simulator.Simulator", "reset", "  simulator reset"),
    ("invalloc.sim.demand.DemandModel", "sample", "    demand draws"),
    ("__main__.NoOpEnv", "step", "env step"),
    ("__main__.NoOpEnv", "reset", "env reset"),
    # PPO's own parts that run beside the env: the rollout's forward passes and buffer, the
    # update's optimiser (the same work on both envs: a difference comes from the CPU caches,
    # or from the data, e.g. the no-op env's zero observations and rewards).
    ("stable_baselines3.common.policies.ActorCriticPolicy", "forward", "  policy forward pass"),
    ("stable_baselines3.common.buffers.RolloutBuffer", "add", "  rollout buffer add"),
    ("torch.optim.Adam", "step", "  Adam step"),
)


class _Breakdown:
    """CPU time spent in each of :data:`BREAKDOWN`'s methods, per run name (wrapped while active)."""

    def __init__(self) -> None:
        import importlib

        self.totals: dict[str, dict[str, float]] = {}
        self.current: dict[str, float] = {}
        self._restore = []
        for path, method, label in BREAKDOWN:
            module, _, name = path.rpartition(".")
            owner = sys.modules[__name__] if module == "__main__" else importlib.import_module(module)
            cls = getattr(owner, name)
            original = cls.__dict__.get(method) or getattr(cls, method)
            self._restore.append((cls, method, cls.__dict__.get(method)))
            setattr(cls, method, self._timed(original, label))

    def _timed(self, original, label: str):
        clock, current = time.process_time, self.current
        if inspect.isgeneratorfunction(original):
            # An actor: time each turn (each ``next``) of the generators it makes.
            def actor(*args, **kwargs):
                generator = original(*args, **kwargs)
                while True:
                    start = clock()
                    try:
                        next(generator)
                    finally:
                        current[label] = current.get(label, 0.0) + clock() - start
                    yield

            return actor

        def timed(*args, **kwargs):
            start = clock()
            try:
                return original(*args, **kwargs)
            finally:
                current[label] = current.get(label, 0.0) + clock() - start

        return timed

    def collect(self, name: str) -> None:
        """Add what was timed since the last call to run ``name``'s totals."""
        totals = self.totals.setdefault(name, {})
        for label, seconds in self.current.items():
            totals[label] = totals.get(label, 0.0) + seconds
        self.current.clear()

    def close(self) -> None:
        for cls, method, original in self._restore:
            if original is None:
                delattr(cls, method)
            else:
                setattr(cls, method, original)


def ppo_throughput(builders: dict, timesteps: int, rounds: int, breakdown: bool = False) -> dict:
    """PPO timesteps per second on each of ``builders`` (name → a function that builds the model
    on its vec env and runs its warm-up), wall and CPU, the runs alternating in ``rounds``
    rounds (the order flipped every round). With ``breakdown`` also the CPU time of each of
    :data:`BREAKDOWN`'s methods (their timers add ~1 µs a call)."""
    import torch

    # One intra-op thread: tiny MLP batches gain nothing from more, and on a busy 2-core
    # machine OpenMP threads spinning against other processes slow each layer 50-fold.
    torch.set_num_threads(1)
    models = {name: build() for name, build in builders.items()}
    chunk = max(timesteps // rounds, 1)
    wall = {name: [] for name in models}
    cpu = {name: [] for name in models}
    steps = dict.fromkeys(models, 0)
    timers = _Breakdown() if breakdown else None
    for round_ in range(rounds):
        order = list(models) if round_ % 2 == 0 else list(reversed(models))
        for name in order:
            model = models[name]
            before = model.num_timesteps
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            model.learn(total_timesteps=chunk, reset_num_timesteps=False)
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
            # PPO collects whole rollouts (n_steps), so a round may run more than ``chunk``.
            steps[name] += model.num_timesteps - before
            if timers is not None:
                timers.collect(name)
    for model in models.values():
        model.get_env().close()
    result = {"chunk": chunk, "steps": steps, "wall": wall, "cpu": cpu}
    if timers is not None:
        timers.close()
        # CPU µs per timestep: each method, and the rest of PPO (rollout bookkeeping, the policy's forward pass).
        result["breakdown"] = {}
        for name, totals in timers.totals.items():
            per_step = {label: seconds / steps[name] * 1e6 for label, seconds in totals.items()}
            per_step["total"] = sum(cpu[name]) / steps[name] * 1e6
            per_step["rest of PPO"] = (
                per_step["total"] - per_step.get("PPO update", 0.0) - per_step.get("vec env step (all of it)", 0.0)
            )
            result["breakdown"][name] = per_step
    return result


def _ratios(times: dict, real: str, noop: str) -> dict[str, float]:
    """No-op time ÷ real time (both ran the same timesteps in each round): the median of the
    rounds' ratios, the lowest and highest round's, and the ratio of the totals."""
    per_round = [n / r for n, r in zip(times[noop], times[real], strict=True)]
    return {
        "median": statistics.median(per_round),
        "low": min(per_round),
        "high": max(per_round),
        "total": sum(times[noop]) / sum(times[real]),
    }


def _load() -> float | None:
    """The machine's 1-minute load average (None where the platform has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def verdict_ratio(row: dict) -> dict[str, float]:
    """The ratios a PPO row's verdict reads: CPU time's where there is one (DummyVecEnv), else
    wall time's."""
    return row["cpu_ratio"] if row["cpu_ratio"] is not None else row["ratio"]


def over_processes(results: list[dict]) -> list[dict]:
    """Per vec env, the verdict over several processes' results (``--json`` outputs): the median
    of their median ratios (CPU time's where there is one, as each verdict reads), the lowest and
    highest, and whether the median meets :data:`TARGET_RATIO`."""
    rows = []
    for i, first in enumerate(results[0]["ppo"]):
        medians = [verdict_ratio(result["ppo"][i])["median"] for result in results]
        median = statistics.median(medians)
        rows.append(
            {
                "vec_env": first["vec_env"],
                "medians": medians,
                "median": median,
                "low": min(medians),
                "high": max(medians),
                "met_in": sum(m >= TARGET_RATIO for m in medians),
                "target_met": median >= TARGET_RATIO,
            }
        )
    return rows


def _in_processes(args: argparse.Namespace, argv: list[str]) -> None:
    """The whole measurement in ``args.processes`` fresh processes, one after the other."""
    from rich.console import Console

    def describe(result: dict) -> str:
        row = result["ppo"][0]
        ratio = verdict_ratio(row)
        return f"{row['vec_env']}: median ratio {ratio['median']:.3f} (rounds {ratio['low']:.2f}–{ratio['high']:.2f})"

    results = run_processes(rerun_command(__file__, argv), args.processes, describe)
    verdicts = over_processes(results)
    if args.plot is not None:
        panels = [
            {
                "label": f"{args.scenario}, {row['vec_env']}",
                "values": row["medians"],
                "median": row["median"],
                "target": TARGET_RATIO,
                "unit": "PPO on the scenario ÷ on a no-op env",
            }
            for row in verdicts
        ]
        plot_processes(args.plot, f"bench_env.py over {args.processes} fresh processes", panels)
    if args.json:
        print(json.dumps({"processes": results, "over_processes": verdicts, "target_ratio": TARGET_RATIO}))
        return
    from rich.table import Table

    table = Table(
        title=f"{args.scenario}: PPO on the scenario ÷ PPO on a no-op env, the median of each of "
        f"{args.processes} processes' rounds (CPU time with DummyVecEnv, wall time with SubprocVecEnv), "
        "and their median"
    )
    for column in ("vec env", "each process", f"median of the processes (target ≥ {TARGET_RATIO})", "lowest–highest"):
        table.add_column(column, justify="right")
    for row in verdicts:
        table.add_row(
            row["vec_env"],
            ", ".join(f"{m:.3f}" for m in row["medians"]),
            f"{row['median']:.3f}: "
            + ("met" if row["target_met"] else "NOT met")
            + f" (met in {row['met_in']} of {len(row['medians'])})",
            f"{row['low']:.3f}–{row['high']:.3f}",
        )
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="retail")
    # Long enough that start-up (first rollout, warm caches) does not weigh on either side.
    parser.add_argument("--timesteps", type=int, default=16384, help="PPO timesteps per env, all rounds together")
    # One PPO rollout (2,048 steps) and update per round by default: eight ratios to take the median of.
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds of the two PPO runs")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of the env-only measurement")
    parser.add_argument(
        "--vec-env",
        choices=["subproc", "dummy", "both"],
        default="dummy",
        help="DummyVecEnv (in-process; the target's), SubprocVecEnv (the env steps in its own process), or both",
    )
    parser.add_argument(
        "--info", choices=["lean", "full"], default="lean", help="the env's per-step info (training uses lean)"
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time (CPU) the env's and PPO's parts per timestep (DummyVecEnv; the timers cost ~1 µs a call)",
    )
    parser.add_argument(
        "--experiment",
        default=None,
        help="also measure PPO as `invalloc train EXPERIMENT` trains it (its algorithm, hyper-parameters, "
        "envs and wrappers) against the same on no-op envs",
    )
    parser.add_argument("--json", action="store_true")
    add_run_options(parser, "each process's median ratio")
    args = parser.parse_args()
    check_run_options(parser, args)
    try:
        load_scenario(args.scenario)
        loaded = load_experiment(args.experiment) if args.experiment is not None else None
    except (ScenarioError, ExperimentError) as error:  # one line per problem, as the command line prints them
        for line in error.lines():
            print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    if loaded is not None and loaded.experiment.algorithm != "PPO":
        print(
            f"error: {loaded.source}: algorithm: {loaded.experiment.algorithm}; --experiment measures PPO experiments",
            file=sys.stderr,
        )
        sys.exit(2)
    if args.processes > 1:
        _in_processes(args, sys.argv[1:])
        return

    load_before = _load()
    reference = AllocationEnv(args.scenario)
    periods = reference.simulator.periods
    steps = env_steps_per_second(args.scenario, args.seconds, args.info)
    cold = step_after_forward(args.scenario, args.info)
    makers = {
        "real": partial(AllocationEnv, args.scenario, info=args.info),
        "noop": partial(NoOpEnv, reference.observation_space, reference.action_space, periods),
    }
    kinds = ["dummy", "subproc"] if args.vec_env == "both" else [args.vec_env]
    runs = [
        (kind, kind, {name: partial(_ppo, make, kind, 0) for name, make in makers.items()}, args.breakdown)
        for kind in kinds
    ]
    if loaded is not None:
        settings = loaded.experiment.env
        label = f"{loaded.experiment.name}: {settings.vec_env} × {settings.n_envs}"
        builders = {"real": partial(_experiment_ppo, loaded, False), "noop": partial(_experiment_ppo, loaded, True)}
        runs.append((label, settings.vec_env, builders, False))
    rows = []
    for label, kind, builders, breakdown in runs:
        measured = ppo_throughput(builders, args.timesteps, args.rounds, breakdown=breakdown)
        wall = _ratios(measured["wall"], "real", "noop")
        cpu = _ratios(measured["cpu"], "real", "noop") if kind == "dummy" else None
        # The verdict reads the CPU-time median where there is one (DummyVecEnv), else wall time's.
        verdict = cpu["median"] if cpu is not None else wall["median"]
        rows.append(
            {
                "vec_env": label,
                "timesteps": measured["steps"]["real"],
                "ppo": measured["steps"]["real"] / sum(measured["wall"]["real"]),
                "ppo_noop_env": measured["steps"]["noop"] / sum(measured["wall"]["noop"]),
                # In-process CPU time: the whole of PPO's only with a DummyVecEnv.
                "ppo_cpu": measured["steps"]["real"] / sum(measured["cpu"]["real"]) if cpu else None,
                "ppo_noop_env_cpu": measured["steps"]["noop"] / sum(measured["cpu"]["noop"]) if cpu else None,
                "ratio": wall,
                "cpu_ratio": cpu,
                "target_met": verdict >= TARGET_RATIO,
                "breakdown_cpu_us_per_step": measured.get("breakdown"),
            }
        )
    result = {
        "scenario": args.scenario,
        "info": args.info,
        "observation_size": int(reference.observation_space.shape[0]),
        "action_size": int(reference.action_space.shape[0]),
        "env_steps_per_second": steps["wall"],
        "env_steps_per_cpu_second": steps["cpu"],
        "env_step_us": cold,
        "timesteps": args.timesteps,
        "rounds": args.rounds,
        "ppo": rows,
        "target_ratio": TARGET_RATIO,
        "load_average": [load_before, _load()],
    }
    if args.json:
        print(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"{args.scenario}: observation {result['observation_size']}, action {result['action_size']}; "
        f"env steps/s (random actions, resets included): {steps['wall']:,.0f} wall, {steps['cpu']:,.0f} CPU; "
        f"load average {load_before} before, {result['load_average'][1]} after"
    )
    console.print(
        f"one env step (median, wall): {cold['alone_us']:.0f} µs back to back, {cold['after_forward_us']:.0f} µs "
        f"right after a forward pass of the PPO policy ({cold['ratio']:.2f}×), {cold['after_sweep_us']:.0f} µs right "
        f"after reading {cold['sweep_bytes'] / 1024**2:.0f} MiB of memory, twice the L2 cache "
        f"({cold['sweep_ratio']:.2f}×: what the CPU caches alone cost it)"
    )
    table = Table(
        title=f"PPO training throughput, {args.timesteps} timesteps in {args.rounds} alternating rounds, "
        f"SB3 defaults (an experiment's row: its own settings, envs and wrappers), CPU, info={args.info}; "
        "ratio = no-op time ÷ scenario time: median of the rounds (lowest–highest round; totals)"
    )
    columns = (
        "vec env",
        "PPO on the scenario (steps/s wall; CPU)",
        "PPO on a no-op env (steps/s wall; CPU)",
        "ratio, wall",
        f"ratio, CPU (target ≥ {TARGET_RATIO})",
    )
    for column in columns:
        table.add_column(column, justify="right")

    def cell(ratio: dict[str, float] | None) -> str:
        if ratio is None:
            return "–"
        return f"{ratio['median']:.3f} ({ratio['low']:.2f}–{ratio['high']:.2f}; {ratio['total']:.3f})"

    for row in rows:
        verdict = "met" if row["target_met"] else "NOT met"
        table.add_row(
            row["vec_env"],
            f"{row['ppo']:,.0f}" + (f"; {row['ppo_cpu']:,.0f}" if row["ppo_cpu"] else ""),
            f"{row['ppo_noop_env']:,.0f}" + (f"; {row['ppo_noop_env_cpu']:,.0f}" if row["ppo_noop_env_cpu"] else ""),
            cell(row["ratio"]) + ("" if row["cpu_ratio"] is not None else f": {verdict}"),
            cell(row["cpu_ratio"]) + (f": {verdict}" if row["cpu_ratio"] is not None else ""),
        )
    console.print(table)
    for row in rows:
        parts = row["breakdown_cpu_us_per_step"]
        if not parts:
            continue
        timed = list(dict.fromkeys(label for _, _, label in BREAKDOWN if label in parts["real"]))
        # PPO's parts under what holds them: the optimiser in the update, the rollout's forward
        # passes and buffer in the rest of PPO.
        nested = {"PPO update": ("  Adam step",), "rest of PPO": ("  policy forward pass", "  rollout buffer add")}
        inside = {label for held in nested.values() for label in held}
        labels = []
        for label in [label for label in timed if label not in inside] + ["rest of PPO", "total"]:
            labels += [label, *(part for part in nested.get(label, ()) if part in parts["real"])]
        detail = Table(title=f"where a timestep's CPU time goes ({row['vec_env']}), µs per timestep")
        for column in ("part", f"PPO on {args.scenario}", "PPO on the no-op env", "difference"):
            detail.add_column(column, justify="left" if column == "part" else "right")
        for label in labels:
            real, noop = parts["real"].get(label, 0.0), parts["noop"].get(label, 0.0)
            detail.add_row(label, f"{real:.1f}", f"{noop:.1f}", f"{real - noop:+.1f}")
        console.print(detail)


if __name__ == "__main__":
    main()
