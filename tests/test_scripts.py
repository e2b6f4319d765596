"""The measurement scripts README quotes run end to end (on `tiny`, small settings).

They are the only place speed and export targets are measured, so a change that breaks one
(a signature, an import) must fail here rather than the next time someone re-measures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from invalloc.agents.training import train

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mlflow_template_db) -> tuple[str, str]:
    store = tmp_path_factory.mktemp("scripts-store")
    shutil.copyfile(mlflow_template_db, store / "mlflow.db")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    return uri, train("tiny_smoke", tracking_uri=uri, run_name="scripts", progress=False).run_id


def _script(name: str, *args: str, tmp: Path) -> dict:
    """Run ``scripts/NAME`` with ``--json`` and a private TMPDIR; its JSON output."""
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "TORCHINDUCTOR_CACHE_DIR": str(tmp.parent / "inductor")}
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args, "--json"], capture_output=True, text=True, env=env, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout.strip()
    return json.loads(text[text.index("{") :])  # anything a library printed first is skipped


def _refusal(name: str, *args: str, tmp: Path, path: str | None = None) -> str:
    """Run ``scripts/NAME`` expecting a refusal: exit 2, nothing on stdout, no traceback, and
    one line on stderr, returned. ``path``: a PATH of one empty folder (no tools on it)."""
    env = {**os.environ, "TMPDIR": str(tmp)}
    if path is not None:
        (tmp / path).mkdir()
        env["PATH"] = str(tmp / path)
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 2 and out.stdout == "" and "Traceback" not in out.stderr, out.stderr[-2000:]
    (line,) = out.stderr.strip().splitlines()
    return line


def test_bench_rules_exports_a_run_and_measures_it(tiny_run, tmp_path):
    uri, run_id = tiny_run
    figures = _script("bench_rules.py", "--run", run_id, "--tracking-uri", uri, "--max-rules", "8", tmp=tmp_path / "t")
    assert figures["scenario"] == "tiny" and 1 <= figures["rules"] <= 8
    assert 0.0 <= figures["fidelity"] <= 1.0 and figures["decisions_per_second"] > 0
    assert figures["best_baseline"].endswith("@tuned")  # tiny ships tuned parameters
    assert not list((tmp_path / "t").iterdir())  # its temporary folders are gone


def test_imitability_fits_and_measures_a_run(tiny_run, tmp_path):
    uri, run_id = tiny_run
    options = ["--run", run_id, "--tracking-uri", uri, "--episodes", "6", "--held-out", "3"]
    figures = _script("imitability.py", *options, tmp=tmp_path / "t")
    assert figures and all(isinstance(value, int | float | str | dict | list) for value in figures.values())
    assert not list((tmp_path / "t").iterdir())


def test_bench_oracle_sweeps_seeds(tmp_path):
    result = _script("bench_oracle.py", "--scenario", "tiny", "--seeds", "0-2", tmp=tmp_path / "t")
    assert [row["seed"] for row in result["rows"]] == [0, 1, 2]
    assert all(row["status"] == "ok" and row["bound"] > 0 for row in result["rows"])


def test_bench_learning_trains_compares_and_writes_the_table(tmp_path, mlflow_template_db):
    store = tmp_path / "store"
    store.mkdir()
    shutil.copyfile(mlflow_template_db, store / "mlflow.db")
    out = tmp_path / "bench"
    options = ["--experiments", "tiny_smoke", "--seeds", "0", "--quick", "--episodes", "4", "--no-oracle"]
    options += ["--out", str(out), "--tracking-uri", f"sqlite:///{store / 'mlflow.db'}"]
    results = _script("bench_learning.py", *options, tmp=tmp_path / "t")

    assert results["complete"] and {p.name for p in out.iterdir()} >= {"results.json", "results.md", "results.png"}
    assert json.loads((out / "results.json").read_text()) == results
    (scenario,) = results["scenarios"]
    assert scenario["scenario"] == "tiny" and scenario["episodes"] == 4 and scenario["oracle"] is None
    # The reference is the best tuned baseline on the held-out episodes, whichever it is.
    baselines = [p for p in scenario["policies"] if p["kind"] == "baseline"]
    assert {p["policy"] for p in baselines} == set(scenario["tuned_baselines"]) and len(baselines) >= 2
    assert scenario["reference"] == max(baselines, key=lambda p: p["reward"]["mean"])["policy"]
    (learned,) = scenario["learned"]
    assert learned["experiment"] == "tiny_smoke" and learned["training_seed"] == 0
    assert learned["env_steps"] == 2048 and learned["wall_seconds"] > 0
    difference = learned["difference"]
    assert difference["n"] == 4 and difference["ci_low"] < difference["mean"] < difference["ci_high"]
    assert difference["mean"] == pytest.approx(learned["reward"]["mean"] - scenario["reference_reward"]["mean"])
    assert difference["verdict"] in {"better", "worse", "no significant difference"}
    assert learned["gap_closed"] is None  # no oracle
    assert "`tiny_smoke` seed 0" in (out / "results.md").read_text()
    assert (out / "results.png").read_bytes().startswith(b"\x89PNG")
    assert not list((tmp_path / "t").iterdir())  # its temporary folders are gone


def _bench_learning():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_learning", SCRIPTS / "bench_learning.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_learning", module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_bench_learning_gap_is_to_the_oracles_executed_plan_not_its_bound():
    from types import SimpleNamespace

    from invalloc.evaluation.compare import EpisodeResult

    def episodes(rewards, bound=None):
        extra = {} if bound is None else {"oracle_bound": bound}
        return [EpisodeResult(i, i, {"total_reward": r, **extra}, "d") for i, r in enumerate(rewards)]

    comparison = SimpleNamespace(
        reference="base",
        oracle="oracle",
        results={
            "base": episodes([100.0, 110.0, 120.0]),
            "run:x": episodes([130.0, 135.0, 140.0]),  # +25 over the reference
            "oracle": episodes([200.0, 210.0, 220.0], bound=1000.0),  # executed plan +100, bound +890
        },
    )
    gap = _bench_learning().executed_plan_gap(comparison).set_index("policy")
    assert gap.loc["run:x", "gap_closed"] == pytest.approx(0.25)
    assert gap.loc["oracle", "gap_closed"] == pytest.approx(1.0)
    assert gap.loc["run:x", "ci_low"] <= 0.25 <= gap.loc["run:x", "ci_high"]


def test_bench_learning_episodes_option():
    bench = _bench_learning()
    assert bench.parse_episodes("50") == (50, {})
    assert bench.parse_episodes("100,retail=30") == (100, {"retail": 30})
    assert bench._episodes_for("retail", None, {}, quick=False) == 30
    assert bench._episodes_for("tiny", None, {}, quick=False) == bench.DEFAULT_EPISODES
    assert bench._episodes_for("retail", 7, {}, quick=False) == 7
    for bad in ("x", "retail=1", ""):
        with pytest.raises(bench.BenchError, match="--episodes"):
            bench.parse_episodes(bad)


def test_bench_sim_reports_every_row_with_its_yardstick_and_targets(tmp_path):
    result = _script("bench_sim.py", "--seconds", "0.05", "--clock", "cpu", tmp=tmp_path / "tmp")
    rows = {row["scenario"]: row for row in result["rows"]}
    assert set(rows) == {"orgym_invmanagement_v1", "retail", "generated_200x3x3", "generated_2000x3x3"}
    big = rows["generated_2000x3x3"]
    assert big["shape"] == {
        "skus": 2000,
        "dcs": 3,
        "channels": 3,
        "decisions": big["shape"]["decisions"],
        "horizon": 52,
    }
    assert big["target_periods_per_s"] == 1000.0 and big["target_sim_over_yardstick"] == 4.0
    assert rows["generated_200x3x3"]["target_sim_over_yardstick"] == 4.0
    for row in rows.values():
        # The median of the rounds in which the simulator and the yardstick took turns.
        assert len(row["sim_over_yardstick_rounds"]) == 6
        middle = sorted(row["sim_over_yardstick_rounds"])[2:4]
        assert row["sim_over_yardstick"] == pytest.approx(sum(middle) / 2)
        assert row["simulator_periods_per_s"] > 0 and row["yardstick_periods_per_s"] > 0
        assert 0.0 <= row["policy_share"] <= 1.0 and 0.0 <= row["reset_share"] <= 1.0
        # Also measured with each next episode's demand drawn ahead; a rate target is met by either.
        assert row["ahead_periods_per_s"] > 0 and row["ahead_over_simulator"] > 0
        if "target_periods_per_s" in row:
            best = max(row["simulator_periods_per_s"], row["ahead_periods_per_s"])
            assert row["target_met"] == (best >= row["target_periods_per_s"])


def test_bench_sim_runs_in_several_processes_and_judges_their_medians(tmp_path):
    plot = tmp_path / "over_processes.png"
    options = ("--seconds", "0.05", "--clock", "cpu", "--processes", "3", "--plot", str(plot))
    result = _script("bench_sim.py", *options, tmp=tmp_path / "t")
    assert len(result["processes"]) == 3
    assert plot.read_bytes().startswith(b"\x89PNG")  # a figure of the run (its processes took no --plot)
    verdicts = {verdict["scenario"]: verdict for verdict in result["over_processes"]}
    assert set(verdicts) == {"orgym_invmanagement_v1", "retail", "generated_200x3x3", "generated_2000x3x3"}
    for i, (key, verdict) in enumerate(verdicts.items()):
        runs = [process["rows"][i] for process in result["processes"]]
        assert all(run["scenario"] == key for run in runs)
        # Each process's better rate (a rate target is met by either), and the median of the three.
        rates = [max(run["simulator_periods_per_s"], run["ahead_periods_per_s"]) for run in runs]
        assert verdict["periods_per_s"] == rates and verdict["median_periods_per_s"] == sorted(rates)[1]
        assert (verdict["low_periods_per_s"], verdict["high_periods_per_s"]) == (min(rates), max(rates))
        ratios = [run["sim_over_yardstick"] for run in runs]
        assert verdict["median_sim_over_yardstick"] == sorted(ratios)[1]
        yardsticks = sorted(run["yardstick_periods_per_s"] for run in runs)
        assert verdict["median_yardstick_periods_per_s"] == yardsticks[1]
        if "target_periods_per_s" in verdict:
            target = verdict["target_periods_per_s"]
            assert verdict["met_in"] == sum(rate >= target for rate in rates)
            assert verdict["target_met"] == (sorted(rates)[1] >= target)
    big = verdicts["generated_2000x3x3"]
    assert big["target_sim_over_yardstick"] == 4.0 and big["yardstick_met_in"] == sum(
        r <= 4.0 for r in big["sim_over_yardstick"]
    )


def test_bench_sim_verdicts_over_processes_skip_a_skipped_row_and_count_the_met():
    bench = _script_module("bench_sim")

    def row(rate: float, ahead: float, ratio: float) -> dict:
        return {
            "scenario": "generated_2000x3x3",
            "shape": {"skus": 2000, "dcs": 3, "channels": 3},
            "simulator_periods_per_s": rate,
            "ahead_periods_per_s": ahead,
            "yardstick_periods_per_s": 2000.0,
            "sim_over_yardstick": ratio,
            "target_periods_per_s": 1000.0,
            "target_sim_over_yardstick": 4.0,
        }

    skipped = {"scenario": "retail", "policy": "base_stock", "note": "skipped: missing"}
    results = [
        {"rows": [skipped, row(700.0, 1100.0, 3.0)]},
        {"rows": [skipped, row(990.0, 900.0, 4.5)]},
        {"rows": [skipped, row(800.0, 1020.0, 4.1)]},
    ]
    (verdict,) = bench.over_processes(results)
    assert verdict["periods_per_s"] == [1100.0, 990.0, 1020.0] and verdict["median_periods_per_s"] == 1020.0
    assert verdict["met_in"] == 2 and verdict["target_met"]
    assert verdict["median_sim_over_yardstick"] == 4.1 and verdict["yardstick_met_in"] == 1
    assert not verdict["yardstick_target_met"]


@pytest.mark.parametrize("script", ["bench_sim.py", "bench_env.py"])
@pytest.mark.parametrize(
    ("plot", "processes", "message"),
    [
        ("figure.png", "1", "give --processes 2 or more"),
        ("figure.jpeg", "2", "the file must end in .png, .svg, .pdf"),
        ("missing/figure.png", "2", "does not exist"),
        ("a_folder.png", "2", "is a folder"),
    ],
)
def test_bench_plot_refuses_a_bad_plot_before_measuring(tmp_path, script, plot, processes, message):
    (tmp_path / "a_folder.png").mkdir()
    line = _refusal(script, "--processes", processes, "--plot", str(tmp_path / plot), tmp=tmp_path)
    assert line.startswith(f"error: --plot {tmp_path / plot}: ") and message in line


def test_bench_sim_profile_names_where_a_period_goes():
    command = [sys.executable, str(SCRIPTS / "bench_sim.py"), "--profile", "retail", "--seconds", "0.3"]
    out = subprocess.run([*command, "--clock", "cpu"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    header, *lines = out.stdout.strip().splitlines()[-16:]
    periods = int(header.split(": ")[1].split(" periods")[0].replace(",", ""))
    assert header.startswith("retail: ") and periods >= 52  # at least one whole episode
    assert len(lines) == 15
    own = [float(line.split()[0]) for line in lines]
    assert own == sorted(own, reverse=True) and own[0] > 0.0
    # Kernels called once a period show one call per period: without an audit log, the whole
    # period's business steps are one compiled call, straight at the compiled code but for the
    # process's first (through numba's dispatcher, which binds the rest: BoundKernel).
    straight = [line for line in lines if "<built-in method invalloc.sim.kernels.period.run_period>" in line]
    assert len(straight) == 1
    calls_per_period = float(straight[0].split(")", 1)[1].split()[0])
    assert 0.9 < calls_per_period <= 1.0


def _script_module(name: str):
    """``scripts/NAME.py`` imported as a module (the scripts folder is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_ab_alternates_two_trees_over_fresh_process_pairs():
    """This tree against itself: every round measures both, in alternating order, and the
    rounds are shared over the process pairs asked for."""
    bench_ab = _script_module("bench_ab")
    said: list[str] = []
    (result,) = bench_ab.compare(bench_ab.ROOT, ["orgym_invmanagement_v1"], 3, 0.1, 2, said.append)
    assert len(result["ratios"]) == len(result["this_periods_per_s"]) == len(result["base_periods_per_s"]) == 3
    assert all(rate > 0 for rate in result["this_periods_per_s"] + result["base_periods_per_s"])
    rates = zip(result["this_periods_per_s"], result["base_periods_per_s"], strict=True)
    assert result["ratios"] == [this / base for this, base in rates]
    assert result["median_ratio"] == sorted(result["ratios"])[1]
    assert result["rounds_faster"] == sum(ratio > 1 for ratio in result["ratios"])
    assert sum("starting both trees" in line for line in said) == 2  # rounds 1-2, then round 3
    assert [line.split(": ")[1].split(":")[0] for line in said if "round " in line] == [
        "round 1/3",
        "round 2/3",
        "round 3/3",
    ]


def test_bench_ab_refuses_a_bad_base_or_row_with_one_error_line_and_leaves_no_worktree():
    root = SCRIPTS.parent
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=root, capture_output=True, text=True).stdout
    command = [sys.executable, str(SCRIPTS / "bench_ab.py")]
    bad_base = subprocess.run([*command, "no-such-commit"], capture_output=True, text=True, timeout=120)
    assert bad_base.returncode == 2 and bad_base.stdout == ""
    assert bad_base.stderr.strip().splitlines() == ["error: base: 'no-such-commit' is not a commit of this repository"]
    bad_row = subprocess.run([*command, "HEAD", "--row", "nope"], capture_output=True, text=True, timeout=300)
    assert bad_row.returncode == 2 and "Traceback" not in bad_row.stderr
    errors = [line for line in bad_row.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "row 'nope' is not in this tree's bench_sim" in errors[0]
    after = subprocess.run(["git", "worktree", "list"], cwd=root, capture_output=True, text=True).stdout
    assert after == worktrees


def test_sim_digest_finds_the_recorded_episodes_unchanged_and_names_a_changed_one(tmp_path):
    recorded = tmp_path / "digests.json"
    command = [sys.executable, str(SCRIPTS / "sim_digest.py"), "--only", "tiny"]
    written = subprocess.run([*command, "--write", str(recorded)], capture_output=True, text=True, timeout=600)
    assert written.returncode == 0, written.stderr[-2000:]
    digests = json.loads(recorded.read_text())
    assert len(digests) > 20 and all(key.startswith("tiny/") for key in digests)
    same = subprocess.run([*command, "--check", str(recorded)], capture_output=True, text=True, timeout=600)
    assert same.returncode == 0 and f"{len(digests)} digests compared, 0 changed" in same.stdout
    key = sorted(digests)[0]
    recorded.write_text(json.dumps({**digests, key: "0" * 64}))
    changed = subprocess.run([*command, "--check", str(recorded)], capture_output=True, text=True, timeout=600)
    assert changed.returncode == 1 and f"CHANGED {key}" in changed.stdout


def _process_result(cpu_median: float | None, wall_median: float, vec_env: str = "dummy") -> dict:
    def ratio(median):
        return None if median is None else {"median": median, "low": median - 0.1, "high": median + 0.1}

    return {"vec_env": vec_env, "cpu_ratio": ratio(cpu_median), "ratio": ratio(wall_median)}


def test_bench_env_verdict_over_processes_is_the_median_of_their_medians():
    bench = _script_module("bench_env")
    results = [
        {"ppo": [_process_result(cpu, 0.5), _process_result(None, wall, "subproc")]}
        for cpu, wall in ((0.80, 0.70), (0.90, 0.95), (0.86, 0.60))
    ]
    dummy, subproc = bench.over_processes(results)
    # DummyVecEnv's verdict reads each process's CPU-time median (not its wall time's).
    assert dummy["medians"] == [0.80, 0.90, 0.86] and dummy["median"] == 0.86
    assert (dummy["low"], dummy["high"], dummy["met_in"], dummy["target_met"]) == (0.80, 0.90, 2, True)
    # SubprocVecEnv has no in-process CPU ratio: wall time's, and 0.70 is the median there.
    assert subproc["median"] == 0.70 and subproc["met_in"] == 1 and not subproc["target_met"]


def test_bench_env_runs_in_several_processes(tmp_path):
    # The smallest measurement, twice: each process's figures and the verdict over both.
    result = _script(
        "bench_env.py",
        *("--scenario", "tiny", "--timesteps", "256", "--rounds", "2", "--seconds", "0.2", "--processes", "2"),
        *("--plot", str(tmp_path / "ratios.svg")),
        tmp=tmp_path / "t",
    )
    assert len(result["processes"]) == 2
    assert "<svg" in (tmp_path / "ratios.svg").read_text()
    (verdict,) = result["over_processes"]
    medians = [process["ppo"][0]["cpu_ratio"]["median"] for process in result["processes"]]
    assert verdict["medians"] == medians and verdict["median"] == pytest.approx(sum(medians) / 2)
    assert verdict["target_met"] == (verdict["median"] >= result["target_ratio"])
    l2 = _script_module("bench_env").l2_cache_bytes()
    for process in result["processes"]:
        cold = process["env_step_us"]
        assert cold["sweep_bytes"] == 2 * l2
        assert cold["after_sweep_us"] > 0 and cold["sweep_ratio"] == pytest.approx(
            cold["after_sweep_us"] / cold["alone_us"]
        )


def test_bench_env_reads_the_l2_cache_size_from_sysfs(tmp_path):
    bench = _script_module("bench_env")
    for index, (level, kind, size) in enumerate(
        [("1", "Data", "48K"), ("1", "Instruction", "32K"), ("2", "Unified", "1280K"), ("3", "Unified", "300M")]
    ):
        folder = tmp_path / "cache" / f"index{index}"
        folder.mkdir(parents=True)
        (folder / "level").write_text(level + "\n")
        (folder / "type").write_text(kind + "\n")
        (folder / "size").write_text(size + "\n")
    assert bench.l2_cache_bytes(tmp_path / "cache") == 1280 * 1024
    (tmp_path / "cache" / "index2" / "size").write_text("2M\n")
    assert bench.l2_cache_bytes(tmp_path / "cache") == 2 * 1024**2
    assert bench.l2_cache_bytes(tmp_path / "nothing") == 2 * 1024**2  # no sysfs: 2 MiB


def test_bench_env_measures_an_experiment_as_invalloc_train_trains_it(tmp_path):
    # tiny_smoke: PPO on two DummyVecEnv envs, its own hyper-parameters, against no-op envs
    # wrapped alike; a row beside the scenario's SB3-default one.
    result = _script(
        "bench_env.py",
        *(
            "--scenario",
            "tiny",
            "--experiment",
            "tiny_smoke",
            "--timesteps",
            "512",
            "--rounds",
            "2",
            "--seconds",
            "0.2",
        ),
        tmp=tmp_path / "t",
    )
    default, experiment = result["ppo"]
    assert default["vec_env"] == "dummy" and experiment["vec_env"] == "tiny_smoke: dummy × 2"
    for row in (default, experiment):
        assert row["cpu_ratio"]["median"] > 0 and row["target_met"] == (row["cpu_ratio"]["median"] >= 0.85)
    # Whole rollouts of 2 envs × 128 steps: at least the 512 timesteps asked, in two rounds.
    assert experiment["timesteps"] >= 512 and experiment["timesteps"] % 256 == 0


@pytest.mark.parametrize(
    ("experiment", "message"),
    [("no_such_experiment", "no_such_experiment: "), ("retail_ars", "algorithm: ARS; --experiment measures PPO")],
)
def test_bench_env_refuses_an_experiment_it_cannot_measure_in_one_line(tmp_path, experiment, message):
    line = _refusal("bench_env.py", "--scenario", "tiny", "--experiment", experiment, tmp=tmp_path)
    assert line.startswith("error: ") and message in line


def test_bench_env_refuses_an_unknown_scenario_in_one_line(tmp_path):
    # Before any process starts.
    line = _refusal("bench_env.py", "--scenario", "no_such_scenario", "--processes", "2", tmp=tmp_path)
    assert line.startswith("error: no_such_scenario: ") and "no such scenario file" in line


def test_code_footprint_counts_distinct_lines_and_names_each_compiled_region():
    footprint = _script_module("code_footprint")
    line = footprint.LINE_BYTES
    run_period, mapping = 0x7F0000000000, 0x7F0000100000  # regions far apart
    samples = [
        # run_period's region: 3 distinct lines (two samples in its first), entry not sampled.
        (run_period + 5 * line, "(/tmp/perf-1.map)"),
        (run_period + 5 * line + 8, "(/tmp/perf-1.map)"),
        (run_period + 6 * line, "(/tmp/perf-1.map)"),
        (run_period + 40 * line, "(/tmp/perf-1.map)"),
        # the mapping's region: 1 line.
        (mapping, "(/tmp/perf-1.map)"),
        # the interpreter: 2 lines; anonymous and unknown code count as compiled code too.
        (0x1000, "(/usr/lib/libpython3.11.so.1.0)"),
        (0x1000 + line, "(/usr/lib/libpython3.11.so.1.0)"),
        (mapping + 2 * line, "([unknown])"),
    ]
    result = footprint.footprint(samples, {"run_period": [run_period], "_compact_mapping": [mapping], "far": [1]})
    objects = {row["object"]: row for row in result["objects"]}
    assert objects["(/tmp/perf-1.map)"]["lines"] == 4 and objects["(/tmp/perf-1.map)"]["samples"] == 5
    assert objects["(/tmp/perf-1.map)"]["compiled"] and objects["([unknown])"]["compiled"]
    assert not objects["(/usr/lib/libpython3.11.so.1.0)"]["compiled"]
    assert objects["(/usr/lib/libpython3.11.so.1.0)"]["kb"] == 2 * line / 1024
    first, second = result["compiled_regions"]
    assert first["functions"] == ["run_period"] and first["lines"] == 3
    assert first["span_kb"] == 36 * line / 1024 and first["executed_kb"] == 3 * line / 1024
    assert first["share"] == pytest.approx(4 / 6)
    # The mapping's region joins its two objects' lines; a function far from every region names none.
    assert second["functions"] == ["_compact_mapping"] and second["lines"] == 2
    assert second["share"] == pytest.approx(2 / 6)


def test_code_footprint_reads_perf_script_within_the_measured_window():
    footprint = _script_module("code_footprint")
    text = (
        "  100.500000:  7f0000000040 (/tmp/perf-9.map)\n"
        "  101.000000:  7f0000000080 (/usr/lib/libc.so.6)\n"
        "  99.000000:  7f00000000c0 (/tmp/perf-9.map)\n"  # before the steps: start-up
        "garbage line\n"
        "  102.500000:  7f0000000100 (/tmp/perf-9.map)\n"  # after
    )
    assert footprint.parse_perf_script(text, (100.0, 102.0)) == [
        (0x7F0000000040, "(/tmp/perf-9.map)"),
        (0x7F0000000080, "(/usr/lib/libc.so.6)"),
    ]


def test_code_footprint_child_steps_the_env_and_finds_the_kernels_entry_points(tmp_path):
    out = tmp_path / "functions.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "code_footprint.py"),
            "--child",
            str(out),
            "--scenario",
            "tiny",
            "--seconds",
            "0.2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["steps"] > 0 and result["window"][0] < result["window"][1]
    # Every kernel an env step calls has a compiled entry point in the child.
    for name in (
        "run_period",
        "_compact_mapping",
        "_record_and_observe",
        "money_outlook",
        "reset_episode",
        "NRT_incref",
    ):
        assert result["functions"][name] and all(isinstance(a, int) and a > 0 for a in result["functions"][name])


@pytest.mark.parametrize(
    ("args", "path", "expected"),
    [
        (["--scenario", "no_such_scenario"], None, "error: no_such_scenario: "),
        ([], "empty", "error: perf: not found on PATH"),
    ],
)
def test_code_footprint_refuses_in_one_line(tmp_path, args, path, expected):
    line = _refusal("code_footprint.py", *args, tmp=tmp_path, path=path)  # a PATH without perf
    assert line.startswith(expected)
