"""``invalloc sweep`` without Ray: the search space, the results across seeds, and training off
the main thread (Ray Tune runs each trial's training in a thread). The sweep on a Ray cluster
is tested in ``tests/ray/test_sweep.py``; bad ``--set`` input in the bad-input corpus."""

from __future__ import annotations

import math
import threading

import pytest

from invalloc.agents.experiment import load_experiment
from invalloc.agents.sweep import TrialSpec, absolute_store
from invalloc.agents.sweep_results import (
    FAILED,
    FINISHED,
    KILLED,
    TrialOutcome,
    best_trial,
    summarise_configurations,
    write_results,
)
from invalloc.agents.sweep_space import SweepError, check_space, parse_settings, parse_value, split_values


def test_values_are_numbers_flags_lists_or_text():
    assert parse_value("1e-4") == 1e-4 and isinstance(parse_value("64"), int)
    assert parse_value("true") is True and parse_value("null") is None
    assert parse_value("[64, 64]") == [64, 64] and parse_value("auto") == "auto"
    assert split_values("[64,64],[32],[]") == ["[64,64]", "[32]", "[]"]


def test_grid_random_and_optuna_spaces():
    settings, problems = parse_settings(
        ["hyperparameters.learning_rate=1e-3,3e-4,1e-4", "policy.net_arch=[32,32],[16]", "timesteps=256"]
    )
    assert not problems
    _, grid = check_space("tiny_smoke", settings, [0, 1], "grid", None)
    assert len(grid.configurations()) == 6 and grid.trials() == 12
    assert grid.configurations()[0] == {
        "hyperparameters.learning_rate": 1e-3,
        "policy.net_arch": [32, 32],
        "timesteps": 256,
    }
    _, random = check_space("tiny_smoke", settings, [0, 1], "random", 4)
    chosen = random.configurations()
    assert len(chosen) == 4 and all(c in grid.configurations() for c in chosen)
    assert chosen == random.configurations()  # drawn with a fixed seed
    _, optuna = check_space("tiny_smoke", settings, [0, 1, 2], "optuna", 2)
    assert optuna.trials() == 6
    spec = TrialSpec("sqlite:////x.db", "parent", optuna, ())
    assert spec.point({"s0": 2, "s1": 1, "s2": 0, "__trial_index__": 2}) == (
        {"hyperparameters.learning_rate": 1e-4, "policy.net_arch": [16], "timesteps": 256},
        2,
    )
    grid_spec = TrialSpec("sqlite:////x.db", "parent", grid, tuple(grid.configurations()))
    assert grid_spec.point({"point": {"configuration": 5, "seed": 1}}) == (grid.configurations()[5], 1)


def test_without_seeds_a_sweep_trains_the_experiments_seed():
    base, space = check_space("tiny_smoke", [], None, "grid", None)
    assert space.seeds == (base.experiment.seed,) and space.configurations() == [{}]


def test_every_bad_value_is_named_with_its_key():
    settings, _ = parse_settings(["hyperparameters.learning_rate=1e-3,-1,fast", "hyperparameters.gamma=0.9,2"])
    with pytest.raises(SweepError) as caught:
        check_space("tiny_smoke", settings, [0], "grid", None)
    assert [line.split(":")[0] for line in caught.value.problems] == [
        "--set hyperparameters.learning_rate=-1",
        "--set hyperparameters.learning_rate=fast",
        "--set hyperparameters.gamma=2",
    ]


def test_overrides_reach_the_loaded_experiment():
    loaded = load_experiment("tiny_smoke", seed=3, overrides={"hyperparameters.learning_rate": 0.01, "timesteps": 99})
    assert loaded.experiment.hyperparameters["learning_rate"] == 0.01
    assert loaded.experiment.timesteps == 99 and loaded.experiment.seed == 3


def test_local_stores_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_store("sqlite:///mlflow.db") == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert absolute_store("runs") == str(tmp_path / "runs")
    assert absolute_store("http://host:5000") == "http://host:5000"


def _outcome(rate: float, seed: int, reward: float | None, status: str = FINISHED) -> TrialOutcome:
    final = {} if reward is None else {"eval/total_reward": reward, "eval/profit": reward / 2, "eval/fill_rate": 0.9}
    return TrialOutcome(
        f"t{rate}_{seed}", {"hyperparameters.learning_rate": rate}, seed, status, f"r{seed}", final=final
    )


def test_results_across_seeds_count_finished_trials_only(tmp_path):
    outcomes = [
        _outcome(1e-3, 0, 10.0),
        _outcome(1e-3, 1, 14.0),
        _outcome(1e-3, 2, None, KILLED),
        _outcome(3e-4, 0, 11.0),
        _outcome(3e-4, 1, 20.0),
        _outcome(1e-4, 0, None, FAILED),
    ]
    rows = summarise_configurations(outcomes)
    assert [row.configuration for row in rows] == [
        "hyperparameters.learning_rate=0.0003",
        "hyperparameters.learning_rate=0.001",
        "hyperparameters.learning_rate=0.0001",
    ]
    best, second, none = rows
    assert (best.trials, best.finished, best.mean) == (2, 2, 15.5)
    # 95% Student-t interval over two seeds: mean ± t(0.975, 1) · s / √2.
    assert math.isclose(best.ci_high - best.mean, 12.706204736 * math.sqrt(40.5) / math.sqrt(2), rel_tol=1e-6)
    assert (second.trials, second.finished, second.mean) == (3, 2, 12.0)
    assert none.mean is None and none.finished == 0
    assert best_trial(outcomes, rows).seed == 1  # the best seed of the best configuration
    write_results(outcomes, rows, tmp_path)
    assert (tmp_path / "results.csv").read_text().count("\n") == 4
    assert (tmp_path / "trials.csv").read_text().count("KILLED") == 1


def test_training_runs_off_the_main_thread(tmp_path):
    """Tune runs a trial's training in a thread, where signal handlers cannot be installed."""
    from invalloc.agents.training import train

    loaded = load_experiment("tiny_smoke", overrides={"timesteps": 128, "evaluation.every_timesteps": 128})
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = train(loaded, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", progress=False)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert "error" not in outcome, repr(outcome.get("error"))
    assert outcome["result"].timesteps >= 128


def test_outcomes_failed_lost_and_stopped_trials(tmp_path):
    """How the driver reads its trials after Tune: a run that raised is FAILED; a run left RUNNING
    by a worker that died (or that Tune stopped) is ended KILLED by the driver."""
    import types

    import mlflow

    from invalloc.agents.sweep import PARENT_TAG_KEY, TRIAL_TAG, _outcomes, _Trials

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("sweep-test", artifact_location=(tmp_path / "artifacts").as_uri())
    _, space = check_space("tiny_smoke", parse_settings(["timesteps=128,256"])[0], [0], "grid", None)
    spec = TrialSpec("unused", "parent", space, tuple(space.configurations()))
    record = _Trials(lambda _: None)
    statuses = {"done": "FINISHED", "raised": "FAILED", "lost": "RUNNING", "stopped": "RUNNING"}
    for index, (trial_id, status) in enumerate(statuses.items()):
        run = client.create_run(experiment, tags={PARENT_TAG_KEY: "parent", TRIAL_TAG: trial_id})
        if status != "RUNNING":
            client.set_terminated(run.info.run_id, status)
        config = {"point": {"configuration": index % 2, "seed": 0}}
        record.started[trial_id] = types.SimpleNamespace(config=config)
    record.started["never_ran"] = types.SimpleNamespace(config={"point": {"configuration": 0, "seed": 0}})
    record.ended = {"done", "raised", "lost", "never_ran"}
    record.results["done"] = {"final_reward": 5.0, "final_json": '{"eval/total_reward": 5.0}'}
    record.errors = {
        "raised": (False, "ValueError: boom"),
        "lost": (True, "ActorDiedError: the actor died"),
        "never_ran": (False, "RunFilesError: config missing"),
    }
    outcomes = {o.trial_id: o for o in _outcomes(client, experiment, spec, record)}
    assert {k: o.status for k, o in outcomes.items()} == {
        "done": FINISHED,
        "raised": FAILED,
        "lost": KILLED,
        "stopped": KILLED,
        "never_ran": FAILED,
    }
    assert outcomes["done"].final_reward == 5.0
    assert "lost with its worker" in outcomes["lost"].reason
    # No run of the sweep is left RUNNING.
    runs = client.search_runs([experiment])
    assert "RUNNING" not in {run.info.status for run in runs}
