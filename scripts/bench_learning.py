"""Learned policies against the best tuned baseline and the oracle, on held-out demand.

For every experiment × training seed the script trains the experiment (wall time and env steps
recorded), then, per scenario, compares every trained policy (``run:RUN_ID``) with every tuned
baseline of the scenario (``NAME@tuned``) and the hindsight oracle on the same held-out
episodes with :func:`invalloc.evaluation.compare.run_comparison` (common random numbers,
paired statistics). Usage, from the repository root::

    .venv/bin/python scripts/bench_learning.py                          # BENCH_EXPERIMENTS, seeds 0,1,2
    .venv/bin/python scripts/bench_learning.py --experiments retail_ppo orgym_v1_ppo --seeds 0-2
    .venv/bin/python scripts/bench_learning.py --experiments tiny_smoke --quick --no-oracle --out /tmp/b

Reported per scenario (``--out``: ``results.json``, ``results.md`` to paste in README,
``results.png``):

- every policy's mean episode reward with its 95% CI;
- the **reference**: the best tuned baseline *on the held-out episodes* (the best of every
  ``NAME@tuned`` of the scenario by mean reward there, as the quickstart picks it);
- per trained run: the paired difference from the reference with its 95% CI, p-value and
  verdict; the share of the gap from the reference to the **oracle's executed plan** that it
  closes, ``(learned − reference) / (oracle − reference)`` in mean reward, with a paired
  bootstrap CI (compare's :func:`~invalloc.evaluation.compare.gap_table`, with the oracle's
  executed reward in place of its LP bound; the share of the gap to the bound is kept too);
  contract breaches and each contract tier's fill rate against the reference's (paired); the
  training wall time and env steps (as the learner counts them).

Held-out episodes use seeds ``--first-seed …`` (default 3,000,000: away from ``tune``'s
training seeds, the experiments' evaluation seeds, ``compare``'s default and the quickstart's).
``--episodes`` defaults to :data:`EPISODES_BY_SCENARIO` (30 on retail, 1,000 on OR-Gym v1,
otherwise :data:`DEFAULT_EPISODES`).

Trained runs are recorded in ``--out/trained.json`` as soon as each finishes; a later call
with the same experiment file, seed, ``--timesteps`` and store reuses them instead of
training again (``--retrain`` trains anyway), so a failed comparison does not cost the
training. Results are rewritten after every scenario.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

#: The experiments benchmarked when ``--experiments`` is not given (edit when shipping) …
BENCH_EXPERIMENTS: tuple[str, ...] = ("retail_ars", "orgym_v1_ars", "orgym_v0_ars")
#: … or, if that is empty, every shipped experiment whose name ends with this marker (e.g. ``"_bench"``).
BENCH_SUFFIX: str | None = None
#: Held-out episodes per scenario name; scenarios not listed use :data:`DEFAULT_EPISODES`.
EPISODES_BY_SCENARIO: dict[str, int] = {"retail": 30, "orgym_invmanagement_v1": 1000}
DEFAULT_EPISODES = 100
#: Seed of the first held-out episode.
FIRST_SEED = 3_000_000
#: ``--quick``: training steps and held-out episodes (unless given), for a smoke test.
QUICK_TIMESTEPS = 2048
QUICK_EPISODES = 5
DEFAULT_OUT = Path("bench") / "learning"


class BenchError(ValueError):
    """Bad input to the benchmark: one line naming the option or file."""


# --------------------------------------------------------------------------- options
def parse_episodes(text: str) -> tuple[int | None, dict[str, int]]:
    """``"50"`` → every scenario 50; ``"retail=30,tiny=5"`` or ``"100,retail=30"`` mixes them.

    Returns ``(default or None, per scenario name)``.
    """
    default: int | None = None
    by_scenario: dict[str, int] = {}
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        name, _, value = part.rpartition("=")
        try:
            number = int(value)
        except ValueError:
            raise BenchError(f"--episodes {text}: expected N or SCENARIO=N, comma-separated") from None
        if number < 2:
            raise BenchError(f"--episodes {text}: at least 2 episodes (a confidence interval needs two)")
        if name:
            by_scenario[name.strip()] = number
        else:
            default = number
    if default is None and not by_scenario:
        raise BenchError(f"--episodes {text}: no number given")
    return default, by_scenario


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--experiments", nargs="+", metavar="NAME", default=None,
        help="Experiments (shipped names or YAML paths); default: BENCH_EXPERIMENTS at the top of this script.",
    )  # fmt: skip
    parser.add_argument("--seeds", default="0,1,2", help="Training seeds, e.g. 0,1,2 or 0-2 (default 0,1,2).")
    parser.add_argument(
        "--episodes", default=None,
        help=f"Held-out episodes: N for every scenario, or SCENARIO=N,… (default {EPISODES_BY_SCENARIO}, "
        f"else {DEFAULT_EPISODES}).",
    )  # fmt: skip
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED, help="Seed of the first held-out episode.")
    parser.add_argument("--oracle", action=argparse.BooleanOptionalAction, default=True, help="Compare the oracle too.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"Output folder (default {DEFAULT_OUT}).")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: sqlite OUT/mlflow.db).")
    parser.add_argument("--timesteps", type=int, default=None, help="Training steps (default: each experiment's).")
    parser.add_argument(
        "--quick", action="store_true",
        help=f"Smoke run: {QUICK_TIMESTEPS} training steps and {QUICK_EPISODES} episodes unless given.",
    )  # fmt: skip
    parser.add_argument("--retrain", action="store_true", help="Train even where OUT/trained.json has the run.")
    parser.add_argument("--parallel", type=int, default=1,
                        help="Trainings run at once, in worker processes (default 1; at most the cores).")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="Also print results.json to standard output.")
    parser.add_argument("--processes", type=int, default=None, help="Comparison worker processes (default: auto).")
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- plan
@dataclass
class Planned:
    """One experiment as loaded (validated) and the scenario group it belongs to."""

    name: str
    loaded: Any  # invalloc.agents.experiment.LoadedExperiment
    scenario: str  # scenario name
    digest: str  # scenario digest (after the experiment's overrides)
    key: str  # sha256 of the experiment text and scenario: identifies a training setting


@dataclass
class Trained:
    experiment: str
    seed: int
    run_id: str
    wall_seconds: float
    env_steps: int
    best_evaluation_reward: float | None
    reused: bool = False

    @property
    def spec(self) -> str:
        return f"run:{self.run_id}"


def _tuned_baselines(scenario: str) -> list[str]:
    """``NAME@tuned`` for every baseline with tuned parameters for ``scenario`` (project or shipped)."""
    from invalloc.config.shipped import PROJECT_FOLDERS, shipped_folder

    names = {
        p.stem
        for folder in (PROJECT_FOLDERS["tuned"], shipped_folder("tuned"))
        for p in (folder / scenario).glob("*.yaml")
    }
    return [f"{name}@tuned" for name in sorted(names)]


def _plan(args: argparse.Namespace) -> tuple[list[Planned], list[int], int | None, dict[str, int]]:
    """Every experiment loaded and checked, the seeds and the episode settings; BenchError lines."""
    from invalloc.agents.experiment import ExperimentError, load_experiment
    from invalloc.baselines.tuning import parse_seeds
    from invalloc.sim.policy import PolicyError

    problems: list[str] = []
    names = args.experiments or list(BENCH_EXPERIMENTS)
    if not names and BENCH_SUFFIX:
        from invalloc.config.shipped import shipped_names

        names = [name for name in shipped_names("experiments") if name.endswith(BENCH_SUFFIX)]
    if not names:
        marker = f"no shipped experiment ends with {BENCH_SUFFIX!r}" if BENCH_SUFFIX else "BENCH_SUFFIX is unset"
        raise BenchError(
            f"--experiments: give the experiments to benchmark (BENCH_EXPERIMENTS is empty and {marker} "
            "in scripts/bench_learning.py)"
        )
    try:
        seeds = parse_seeds(args.seeds)
    except PolicyError as error:
        problems.append(str(error))
        seeds = []
    default, by_scenario = None, {}
    if args.episodes is not None:
        try:
            default, by_scenario = parse_episodes(args.episodes)
        except BenchError as error:
            problems.append(str(error))
    if args.timesteps is not None and args.timesteps < 1:
        problems.append(f"--timesteps {args.timesteps}: must be at least 1")
    if args.first_seed < 0:
        problems.append(f"--first-seed {args.first_seed}: must be at least 0")
    if args.parallel < 1:
        problems.append(f"--parallel {args.parallel}: must be at least 1")
    if args.processes is not None and args.processes < 1:
        problems.append(f"--processes {args.processes}: must be at least 1")
    if args.out.exists() and not args.out.is_dir():
        problems.append(f"--out {args.out}: is a file, not a folder")
    timesteps = args.timesteps if args.timesteps is not None else (QUICK_TIMESTEPS if args.quick else None)
    planned: list[Planned] = []
    for name in dict.fromkeys(names):
        try:
            loaded = load_experiment(name, timesteps=timesteps)
        except ExperimentError as error:
            problems.extend(error.lines())
            continue
        scenario = loaded.scenario.scenario.name
        key = hashlib.sha256(f"{loaded.text}\n{loaded.scenario.digest}".encode()).hexdigest()
        planned.append(Planned(loaded.experiment.name, loaded, scenario, loaded.scenario.digest, key))
        if not _tuned_baselines(scenario):
            problems.append(
                f"{loaded.source}: scenario {scenario} has no tuned baselines; run scripts/tune_baselines.py "
                f"--scenario {scenario} (or invalloc tune … --out configs/tuned/{scenario}/NAME.yaml)"
            )
        evaluation = loaded.experiment.evaluation
        episodes = _episodes_for(scenario, default, by_scenario, args.quick)
        low, high = args.first_seed, args.first_seed + episodes - 1
        if low <= evaluation.first_seed + evaluation.episodes - 1 and evaluation.first_seed <= high:
            problems.append(
                f"--first-seed {args.first_seed}: held-out seeds {low}-{high} overlap the evaluation seeds of "
                f"{loaded.experiment.name} ({evaluation.first_seed}-{evaluation.first_seed + evaluation.episodes - 1}) "
                "that chose its best model; pick seeds away from them"
            )
    unknown = sorted(set(by_scenario) - {p.scenario for p in planned})
    if unknown and planned:
        problems.append(f"--episodes: no benchmarked experiment trains on {', '.join(unknown)}")
    if problems:
        raise BenchError("\n".join(problems))
    return planned, seeds, default, by_scenario


def _episodes_for(scenario: str, default: int | None, by_scenario: dict[str, int], quick: bool) -> int:
    if scenario in by_scenario:
        return by_scenario[scenario]
    if default is not None:
        return default
    if quick:
        return QUICK_EPISODES
    return EPISODES_BY_SCENARIO.get(scenario, DEFAULT_EPISODES)


# --------------------------------------------------------------------------- training
def _write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (a temporary file beside it, then ``os.replace``)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


def _record_key(plan: Planned, seed: int, timesteps: int | None, uri: str) -> str:
    return f"{plan.key}|{seed}|{timesteps}|{uri}"


def _load_records(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    try:
        return {row["key"]: row for row in json.loads(path.read_text())}
    except (ValueError, KeyError, TypeError):
        return {}  # an unreadable record only means training again


def _finished(uri: str, run_id: str) -> bool:
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.MlflowClient(uri).get_run(run_id).info.status == "FINISHED"
    except MlflowException:
        return False


def _train_one(source: str, timesteps: int | None, seed: int, uri: str, run_name: str, progress: bool) -> dict:
    """Train one experiment × seed (in this process or a worker); a plain dict of the outcome."""
    from invalloc.agents.training import train

    began = time.perf_counter()
    try:
        result = train(source, timesteps=timesteps, seed=seed, tracking_uri=uri, run_name=run_name, progress=progress)
    except Exception as error:  # noqa: BLE001 - reported by the parent: the error types need not pickle
        raise RuntimeError(f"{run_name}: {type(error).__name__}: {error}") from None
    best = float(result.best_reward) if math.isfinite(result.best_reward) else None
    return {"run_id": result.run_id, "wall_seconds": time.perf_counter() - began,
            "env_steps": int(result.timesteps), "best_evaluation_reward": best}  # fmt: skip


def _train_all(
    plans: list[Planned], seeds: list[int], args: argparse.Namespace, uri: str, console
) -> dict[tuple[str, int], Trained]:
    """Train every experiment × seed (or reuse a finished run recorded in OUT/trained.json).

    With ``--parallel N`` (N > 1), N trainings run at once in worker processes (each trains
    with one torch thread and one environment process, so N ≤ cores keeps wall times honest);
    the store exists before any worker writes to it.
    """
    import concurrent.futures
    import multiprocessing

    path = args.out / "trained.json"
    records = _load_records(path)
    timesteps = args.timesteps if args.timesteps is not None else (QUICK_TIMESTEPS if args.quick else None)
    trained: dict[tuple[str, int], Trained] = {}
    total = len(plans) * len(seeds)
    todo: list[tuple[int, Planned, int, str]] = []
    for number, (plan, seed) in enumerate(((p, s) for p in plans for s in seeds), start=1):
        key = _record_key(plan, seed, timesteps, uri)
        record = records.get(key)
        if record is not None and not args.retrain and _finished(uri, record["run_id"]):
            trained[(plan.name, seed)] = Trained(
                plan.name, seed, record["run_id"], record["wall_seconds"], record["env_steps"],
                record.get("best_evaluation_reward"), reused=True,
            )  # fmt: skip
            console.print(f"[{number}/{total}] {plan.name} seed {seed}: reusing run {record['run_id']} "
                          f"(trained in {record['wall_seconds'] / 60:.1f} min)", markup=False)  # fmt: skip
            continue
        todo.append((number, plan, seed, key))

    def finished(plan: Planned, seed: int, key: str, outcome: dict) -> None:
        trained[(plan.name, seed)] = Trained(
            plan.name, seed, outcome["run_id"], outcome["wall_seconds"], outcome["env_steps"],
            outcome["best_evaluation_reward"],
        )  # fmt: skip
        console.print(f"{plan.name} seed {seed}: run {outcome['run_id']}, {_minutes(outcome['wall_seconds'])}, "
                      f"{outcome['env_steps']:,} env steps", markup=False)  # fmt: skip
        records[key] = {"key": key, "experiment": plan.name, "seed": seed, "timesteps": timesteps,
                        "tracking_uri": uri, **outcome}  # fmt: skip
        _write_json(path, list(records.values()))

    parallel = max(1, int(getattr(args, "parallel", 1) or 1))
    if parallel == 1 or len(todo) <= 1:
        for number, plan, seed, key in todo:
            steps = plan.loaded.experiment.timesteps if timesteps is None else timesteps
            console.rule(f"[{number}/{total}] training {plan.name} on {plan.scenario}, seed {seed}, {steps:,} steps")
            outcome = _train_one(plan.loaded.source, timesteps, seed, uri, f"bench-{plan.name}-seed{seed}",
                                 console.is_terminal)  # fmt: skip
            finished(plan, seed, key, outcome)
        return trained
    import mlflow

    mlflow.MlflowClient(uri).search_experiments()  # create and migrate the store before the workers write
    console.rule(f"training {len(todo)} runs, {parallel} at a time")
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(parallel, mp_context=context) as pool:
        futures = {
            pool.submit(_train_one, plan.loaded.source, timesteps, seed, uri, f"bench-{plan.name}-seed{seed}", False):
            (plan, seed, key)
            for _, plan, seed, key in todo
        }  # fmt: skip
        for future in concurrent.futures.as_completed(futures):
            plan, seed, key = futures[future]
            finished(plan, seed, key, future.result())
    return trained


# --------------------------------------------------------------------------- measuring
def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def _row(frame, **where) -> dict[str, Any] | None:
    """The one row of ``frame`` matching ``where`` (column == value), as a dict; None if absent."""
    mask = None
    for column, value in where.items():
        match = frame[column] == value
        mask = match if mask is None else mask & match
    rows = frame[mask]
    return None if rows.empty else rows.iloc[0].to_dict()


def _interval(row: dict[str, Any] | None, mean_key: str = "mean") -> dict[str, Any] | None:
    if row is None:
        return None
    out = {"mean": _finite(row[mean_key]), "ci_low": _finite(row["ci_low"]), "ci_high": _finite(row["ci_high"])}
    for extra in ("p_value", "verdict", "n"):
        if extra in row:
            out[extra] = {"verdict": str, "n": int}.get(extra, _finite)(row[extra])
    return out


def executed_plan_gap(comparison):
    """Share of the reference-to-oracle gap closed, with the oracle's *executed* reward as the
    target: compare's :func:`gap_table` (same bootstrap) on results where the oracle's bound is
    replaced by the reward its plan earned in the simulator."""
    from invalloc.evaluation.compare import EpisodeResult, gap_table

    oracle = comparison.oracle
    results = dict(comparison.results)
    results[oracle] = [
        EpisodeResult(r.episode, r.seed, {**r.kpis, "oracle_bound": r.kpis["total_reward"]}, r.demand_digest)
        for r in comparison.results[oracle]
    ]
    return gap_table(results, comparison.reference, oracle)


def summarise(comparison, trained: list[Trained], baselines: list[str]) -> dict[str, Any]:
    """The benchmark's figures for one scenario from a finished comparison."""
    kpis, paired = comparison.kpis, comparison.paired
    reference, oracle = comparison.reference, comparison.oracle
    plan_gap = executed_plan_gap(comparison) if oracle else None
    contract_tiers = [tier for tier, minimum in comparison.tier_min_fill_rate.items() if minimum > 0]
    has_breaches = bool((kpis["kpi"] == "contract_breaches").any())

    def mean_of(label: str, kpi: str = "total_reward") -> dict[str, Any] | None:
        return _interval(_row(kpis, policy=label, kpi=kpi))

    def versus(label: str, kpi: str = "total_reward") -> dict[str, Any] | None:
        return _interval(_row(paired, policy=label, kpi=kpi), "mean_difference")

    def shortfall_points(label: str) -> float | None:
        """Sum over contract tiers of how far the mean fill rate falls below the minimum, in points."""
        if not contract_tiers:
            return None
        rates = {tier: mean_of(label, f"fill_rate_by_tier/{tier}")["mean"] for tier in contract_tiers}
        return 100 * sum(max(0.0, comparison.tier_min_fill_rate[tier] - rate) for tier, rate in rates.items())

    policies = []
    for label in comparison.labels:
        kind = "oracle" if label == oracle else ("learned" if label.startswith("run:") else "baseline")
        policies.append({
            "policy": label, "kind": kind, "reward": mean_of(label), "is_reference": label == reference,
            "contract_breaches": mean_of(label, "contract_breaches") if has_breaches else None,
            "contract_shortfall_points": shortfall_points(label),
        })  # fmt: skip

    learned = []
    for run in trained:
        label = run.spec
        entry: dict[str, Any] = {
            "experiment": run.experiment, "training_seed": run.seed, "run_id": run.run_id, "policy": label,
            "wall_seconds": round(run.wall_seconds, 1), "env_steps": run.env_steps,
            "best_evaluation_reward": run.best_evaluation_reward, "reused_run": run.reused,
            "reward": mean_of(label), "difference": versus(label),
        }  # fmt: skip
        entry["beats_reference"] = entry["difference"]["verdict"] == "better"
        if plan_gap is not None:
            row = _row(plan_gap, policy=label)
            entry["gap_closed"] = {"share": _finite(row["gap_closed"]), "ci_low": _finite(row["ci_low"]),
                                   "ci_high": _finite(row["ci_high"])}  # fmt: skip
            row = _row(comparison.gap, policy=label)
            entry["gap_closed_to_bound"] = {"share": _finite(row["gap_closed"]), "ci_low": _finite(row["ci_low"]),
                                            "ci_high": _finite(row["ci_high"])}  # fmt: skip
        else:
            entry["gap_closed"] = entry["gap_closed_to_bound"] = None
        contract: dict[str, Any] = {
            "tiers": {}, "shortfall_points": shortfall_points(label),
            "reference_shortfall_points": shortfall_points(reference),
        }  # fmt: skip
        if has_breaches:
            contract["breaches"] = mean_of(label, "contract_breaches")
            contract["reference_breaches"] = mean_of(reference, "contract_breaches")
            contract["breaches_difference"] = versus(label, "contract_breaches")
        for tier in contract_tiers:
            key = f"fill_rate_by_tier/{tier}"
            minimum = comparison.tier_min_fill_rate[tier]
            ours, theirs = mean_of(label, key), mean_of(reference, key)
            contract["tiers"][tier] = {
                "minimum": minimum, "fill_rate": ours, "reference_fill_rate": theirs, "difference": versus(label, key),
                # how far the mean fill rate falls below the contract's minimum (0: it meets it)
                "shortfall": max(0.0, minimum - ours["mean"]),
                "reference_shortfall": max(0.0, minimum - theirs["mean"]),
            }  # fmt: skip
        # No more contract-tier shortfall than the reference: no more breaches (tier × period below
        # the minimum) on average, and no tier's mean fill rate further below its minimum.
        checks = [contract["breaches"]["mean"] <= contract["reference_breaches"]["mean"]] if has_breaches else []
        checks += [t["shortfall"] <= t["reference_shortfall"] for t in contract["tiers"].values()]
        contract["no_more_than_reference"] = bool(all(checks)) if checks else None
        entry["contract"] = contract if checks else None
        learned.append(entry)

    experiments = []
    for name in dict.fromkeys(run.experiment for run in trained):
        runs = [e for e in learned if e["experiment"] == name]
        shares = [e["gap_closed"]["share"] for e in runs if e["gap_closed"] and e["gap_closed"]["share"] is not None]
        contract_ok = [e["contract"]["no_more_than_reference"] for e in runs if e["contract"]]
        experiments.append({
            "experiment": name, "seeds": [e["training_seed"] for e in runs],
            "seeds_beating_reference": sum(e["beats_reference"] for e in runs),
            "mean_reward_over_seeds": sum(e["reward"]["mean"] for e in runs) / len(runs),
            "mean_gap_closed_over_seeds": sum(shares) / len(shares) if shares else None,
            "seeds_no_more_contract_shortfall": sum(contract_ok) if contract_ok else None,
            "mean_wall_seconds": sum(e["wall_seconds"] for e in runs) / len(runs),
            "mean_env_steps": sum(e["env_steps"] for e in runs) / len(runs),
        })  # fmt: skip

    return {
        "scenario": comparison.scenario,
        "scenario_digest": comparison.scenario_digest,
        "episodes": comparison.episodes,
        "seeds": [comparison.seed, comparison.seed + comparison.episodes - 1],
        "reference": reference,
        "reference_reward": mean_of(reference),
        "tuned_baselines": baselines,
        "oracle": oracle,
        "oracle_reward": mean_of(oracle) if oracle else None,
        "oracle_difference": versus(oracle) if oracle else None,
        "oracle_bound": mean_of(oracle, "oracle_bound") if oracle else None,
        "policies": policies,
        "learned": learned,
        "experiments": experiments,
        "comparison_seconds": round(comparison.seconds, 1),
        "comparison_run_id": comparison.mlflow_run_id,
        "comparison": comparison.to_dict(),
    }


# --------------------------------------------------------------------------- output
def _digits(scenario: dict[str, Any]) -> int:
    """Decimals for rewards: none for large money figures, one for OR-Gym-sized ones."""
    reference = scenario["reference_reward"]["mean"] or 0.0
    return 0 if abs(reference) >= 10_000 else 1


def _number(value: float | None, digits: int, sign: bool = False) -> str:
    if value is None:
        return "–"
    if round(value, digits) == 0:
        value = 0.0  # no "−0.0"
    return f"{value:{'+' if sign else ''},.{digits}f}".replace("-", "−")


def _mean_ci(interval: dict[str, Any] | None, digits: int) -> str:
    if interval is None or interval["mean"] is None:
        return "–"
    if interval["ci_low"] is None:
        return _number(interval["mean"], digits)
    half = (interval["ci_high"] - interval["ci_low"]) / 2
    return f"{_number(interval['mean'], digits)} ± {_number(half, digits)}"


def _difference(interval: dict[str, Any] | None, digits: int) -> str:
    if interval is None or interval["mean"] is None:
        return "–"
    text = _number(interval["mean"], digits, sign=True)
    if interval["ci_low"] is not None:
        text += f" [{_number(interval['ci_low'], digits, True)}, {_number(interval['ci_high'], digits, True)}]"
    return text


def _share(gap: dict[str, Any] | None) -> str:
    if gap is None or gap["share"] is None:
        return "–"
    text = f"{gap['share']:.0%}".replace("-", "−")
    if gap["ci_low"] is not None:
        text += f" [{gap['ci_low']:.0%}, {gap['ci_high']:.0%}]".replace("-", "−")
    return text


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _seed_range(scenario: dict[str, Any]) -> str:
    low, high = scenario["seeds"]
    return f"{low:,}–{high:,}"


def _contract_cells(policy: dict[str, Any], delta: dict[str, Any] | None = None) -> str:
    """Two table cells: mean contract breaches (with the paired difference) and the shortfall in points."""
    breaches, points = policy["contract_breaches"], policy["contract_shortfall_points"]
    breach = "–" if breaches is None else _number(breaches["mean"], 1)
    if delta is not None and breaches is not None:
        breach += f" ({_difference(delta, 1)})"
    return f"{breach} | {_number(points, 1)}"


def _contract_note(runs: list[dict[str, Any]]) -> str:
    """The two contract measures apart: the year's fill-rate shortfall, and the weeks below the minimum.

    A policy can fill a contract tier above its minimum over the year and still miss it in more
    weeks than the reference; the note says both, and names the seeds where the weeks are
    significantly more (paired CI above 0).
    """
    runs = [e for e in runs if e["contract"]]
    if not runs:
        return ""
    points = sum(all(t["shortfall"] <= t["reference_shortfall"] for t in e["contract"]["tiers"].values()) for e in runs)
    note = f", no more contract-tier fill-rate shortfall than it at {points} of {len(runs)} seeds"
    with_breaches = [e for e in runs if "breaches" in e["contract"]]
    if with_breaches:
        fewer = sum(
            e["contract"]["breaches"]["mean"] <= e["contract"]["reference_breaches"]["mean"] for e in with_breaches
        )
        more = [
            str(e["training_seed"])
            for e in with_breaches
            if (e["contract"]["breaches_difference"] or {}).get("ci_low", 0.0) > 0.0
        ]
        note += f", no more contract breach weeks at {fewer} of {len(with_breaches)}"
        if more:
            note += f" (significantly more at seed {', '.join(more)})"
    return note


def markdown(results: dict[str, Any]) -> str:
    """A Markdown section with one table per scenario, ready to paste in README."""
    lines = [
        "| scenario | policy | training | mean reward ± 95% CI | paired difference vs best tuned [95% CI] "
        "| verdict | gap to oracle's plan closed [95% CI] | contract breaches (Δ vs best tuned) "
        "| contract-tier shortfall (fill-rate points) |",
        "|---|---|---|--:|--:|---|--:|--:|--:|",
    ]
    notes = []
    for scenario in results["scenarios"]:
        digits = _digits(scenario)
        name = f"{scenario['scenario']} ({scenario['episodes']:,} ep.)"
        reference = scenario["reference"]
        by_label = {p["policy"]: p for p in scenario["policies"]}

        lines.append(
            f"| {name} | best tuned: `{reference}` | – | {_mean_ci(scenario['reference_reward'], digits)} "
            f"| reference | – | 0% | {_contract_cells(by_label[reference])} |"
        )
        for entry in scenario["learned"]:
            contract = entry["contract"]
            breach = _contract_cells(
                by_label[entry["policy"]], contract.get("breaches_difference") if contract else None
            )
            training = f"{_minutes(entry['wall_seconds'])}, {entry['env_steps']:,} steps"
            lines.append(
                f"| {name} | `{entry['experiment']}` seed {entry['training_seed']} | {training} "
                f"| {_mean_ci(entry['reward'], digits)} | {_difference(entry['difference'], digits)} "
                f"| {entry['difference']['verdict']} | {_share(entry['gap_closed'])} | {breach} |"
            )
        if scenario["oracle"]:
            lines.append(
                f"| {name} | oracle (executed plan) | – | {_mean_ci(scenario['oracle_reward'], digits)} "
                f"| {_difference(scenario['oracle_difference'], digits)} | {scenario['oracle_difference']['verdict']} "
                f"| 100% | {_contract_cells(by_label[scenario['oracle']])} |"
            )
        others = [
            f"`{p['policy']}` {_mean_ci(p['reward'], digits)}"
            for p in scenario["policies"]
            if p["kind"] == "baseline" and not p["is_reference"]
        ]
        note = (
            f"**{scenario['scenario']}**: {scenario['episodes']:,} held-out episodes (seeds {_seed_range(scenario)}); "
            f"best tuned baseline on them: `{reference}`"
        )
        if others:
            note += f" (other tuned baselines: {'; '.join(others)})"
        if scenario["oracle"] and scenario["oracle_bound"]:
            note += f"; oracle's LP bound {_number(scenario['oracle_bound']['mean'], digits)}"
        for experiment in scenario["experiments"]:
            n = len(experiment["seeds"])
            note += (
                f". `{experiment['experiment']}` beats it at {experiment['seeds_beating_reference']} of {n} "
                f"training seeds (paired 95% CI above 0)"
            )
            share, contract = experiment["mean_gap_closed_over_seeds"], experiment["seeds_no_more_contract_shortfall"]
            if share is not None:
                note += f", closes {share:.0%} of the gap on average".replace("-", "−")
            if contract is not None:
                note += _contract_note([e for e in scenario["learned"] if e["experiment"] == experiment["experiment"]])
        notes.append(note + ".")
    settings = results["settings"]
    footer = (
        f"Measured by `{settings['command']}` on {settings['date']} ({settings['cores']} cores). Mean episode "
        "reward (discounted) with its 95% t-interval; paired differences on common random numbers "
        "(`invalloc compare`); gap closed = (learned − best tuned) / (oracle's executed plan − best tuned), "
        "paired bootstrap CI; contract breaches = tier × period below the contract's minimum fill rate, per episode; "
        "contract-tier shortfall = sum over contract tiers of how far the mean fill rate falls below the minimum; "
        "training = wall time and env steps."
    )
    return "\n".join([*lines, "", *notes, "", footer, ""])


def plot(results: dict[str, Any], path: Path) -> None:
    """Per scenario: mean reward ± 95% CI (left) and paired difference vs the best tuned baseline (right)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    scenarios = results["scenarios"]
    heights = [2 + len(s["learned"]) + (1 if s["oracle"] else 0) for s in scenarios]
    fig = Figure(figsize=(12, 0.9 + 0.42 * sum(heights) + 0.6 * len(scenarios)), layout="constrained")
    axes = fig.subplots(len(scenarios), 2, squeeze=False, gridspec_kw={"height_ratios": heights})
    colours = {"reference": "#4c72b0", "learned": "#dd8452", "oracle": "#55a868"}
    for row, scenario in enumerate(scenarios):
        formatter = FuncFormatter(lambda x, _pos: f"{x:,.{0 if float(x).is_integer() else 1}f}".replace("-", "−"))
        items = [(f"best tuned: {scenario['reference']}", scenario["reference_reward"], None, "reference")]
        items += [
            (f"{e['experiment']} seed {e['training_seed']}", e["reward"], e["difference"], "learned")
            for e in scenario["learned"]
        ]
        if scenario["oracle"]:
            items.append(("oracle (executed plan)", scenario["oracle_reward"], scenario["oracle_difference"], "oracle"))
        labels = [label for label, *_ in items][::-1]
        for column, (ax, which) in enumerate(zip(axes[row], ("mean", "difference"), strict=True)):
            for y, (_, mean, difference, kind) in enumerate(items[::-1]):
                interval = mean if which == "mean" else difference
                if interval is None or interval["mean"] is None:
                    continue
                low = interval["ci_low"] if interval["ci_low"] is not None else interval["mean"]
                high = interval["ci_high"] if interval["ci_high"] is not None else interval["mean"]
                ax.errorbar(
                    interval["mean"], y, xerr=[[interval["mean"] - low], [high - interval["mean"]]],
                    fmt="o", color=colours[kind], capsize=4, markersize=6,
                )  # fmt: skip
            reference_x = scenario["reference_reward"]["mean"] if which == "mean" else 0.0
            ax.axvline(reference_x, color=colours["reference"], linestyle="--", linewidth=1)
            ax.set_yticks(range(len(labels)), labels if column == 0 else [""] * len(labels))
            ax.set_ylim(-0.6, len(labels) - 0.4)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
            ax.xaxis.set_major_formatter(formatter)
            ax.grid(axis="x", alpha=0.3)
            title = (
                f"{scenario['scenario']}\nmean episode reward ± 95% CI, {scenario['episodes']:,} held-out episodes"
                if which == "mean"
                else "\npaired difference vs best tuned baseline ± 95% CI"
            )
            ax.set_title(title, fontsize=10, loc="left")
    fig.savefig(path, dpi=120)


# --------------------------------------------------------------------------- main
def _settings(args: argparse.Namespace, uri: str, seeds: list[int], episodes: dict[str, int]) -> dict[str, Any]:
    import datetime

    return {
        "command": shlex.join([".venv/bin/python", "scripts/bench_learning.py", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "training_seeds": seeds,
        "episodes": episodes,
        "first_seed": args.first_seed,
        "oracle": args.oracle,
        "timesteps": args.timesteps if args.timesteps is not None else (QUICK_TIMESTEPS if args.quick else None),
        "quick": args.quick,
        "tracking_uri": uri,
    }  # fmt: skip


def write_outputs(results: dict[str, Any], out: Path) -> None:
    _write_json(out / "results.json", results)
    tmp = out / f".results.md.{os.getpid()}.tmp"
    tmp.write_text(markdown(results))
    os.replace(tmp, out / "results.md")
    if results["scenarios"]:
        tmp = out / f".results.{os.getpid()}.tmp.png"
        plot(results, tmp)
        os.replace(tmp, out / "results.png")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from rich.console import Console

    from invalloc.evaluation.compare import run_comparison
    from invalloc.tracking import configure_tracking

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    plans, seeds, default, by_scenario = _plan(args)
    if args.tracking_uri is not None:
        uri = configure_tracking(args.tracking_uri)  # checked before anything is written
        args.out.mkdir(parents=True, exist_ok=True)
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        uri = configure_tracking(f"sqlite:///{(args.out / 'mlflow.db').resolve()}")
    groups: dict[str, list[Planned]] = {}
    for plan in plans:
        groups.setdefault(plan.digest, []).append(plan)
    episodes = {group[0].scenario: _episodes_for(group[0].scenario, default, by_scenario, args.quick)
                for group in groups.values()}  # fmt: skip
    results: dict[str, Any] = {"settings": _settings(args, uri, seeds, episodes), "scenarios": [], "complete": False}

    trained = _train_all(plans, seeds, args, uri, console)
    for digest, group in groups.items():
        scenario = group[0].scenario
        runs = [trained[(plan.name, seed)] for plan in group for seed in seeds]
        source = group[0].loaded.scenario.source
        if any(plan.loaded.experiment.scenario_overrides for plan in group):
            from invalloc.export import scenario_of_run

            folder = args.out / "scenarios" / digest[:12]
            folder.mkdir(parents=True, exist_ok=True)
            source = scenario_of_run(runs[0].run_id, uri, folder).source
        baselines = _tuned_baselines(scenario)
        specs = [run.spec for run in runs] + baselines + (["oracle"] if args.oracle else [])
        count = episodes[scenario]
        console.rule(
            f"comparing {len(specs)} policies on {scenario}: {count:,} held-out episodes from seed {args.first_seed:,}"
        )
        comparison = run_comparison(
            source, specs, episodes=count, seed=args.first_seed, tracking_uri=uri, processes=args.processes,
        )  # fmt: skip
        summary = summarise(comparison, runs, baselines)
        results["scenarios"].append(summary)
        write_outputs(results, args.out)
        digits = _digits(summary)
        console.print(f"{scenario}: best tuned baseline {summary['reference']} "
                      f"{_mean_ci(summary['reference_reward'], digits)}", markup=False)  # fmt: skip
        for entry in summary["learned"]:
            console.print(
                f"  {entry['experiment']} seed {entry['training_seed']}: {_mean_ci(entry['reward'], digits)}; "
                f"vs best tuned {_difference(entry['difference'], digits)} ({entry['difference']['verdict']}); "
                f"gap to the oracle's plan closed {_share(entry['gap_closed'])}",
                markup=False,
            )
    results["complete"] = True
    write_outputs(results, args.out)
    console.print(f"results: {args.out / 'results.json'}, {args.out / 'results.md'}, {args.out / 'results.png'}",
                  markup=False)  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> int:
    from invalloc.agents.training import ResumeError, TrainingFailed, TrainingStopped
    from invalloc.evaluation.compare import ComparisonError
    from invalloc.export.exporter import ExportError
    from invalloc.sim.policy import PolicyError
    from invalloc.tracking import TrackingError

    args = parse_args(argv)
    try:
        results = run(args)
    except BenchError as error:
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except (TrackingError, PolicyError, ComparisonError, ResumeError, ExportError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: --out {args.out}: cannot be written ({error.strerror or error})", file=sys.stderr)
        return 2
    except TrainingFailed as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    except TrainingStopped as error:
        print(str(error), file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("stopped; finished trainings are in trained.json and will be reused", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(results, indent=1, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
