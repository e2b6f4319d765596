"""A plain (not editable) install works from anywhere: shipped data, the version, the env id.

The wheel is built from a copy of the repository's packaging inputs and installed into a
throwaway venv. Its dependencies come from this test's environment through a ``.pth`` line
written *after* the install, so pip never sees them, and a path line does not run the
environment's own ``.pth`` files (such as an editable install of invalloc). Every check runs
from a folder outside the repository with ``PYTHONPATH`` unset.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
import yaml

import invalloc
from invalloc.agents.experiment import EXPERIMENTS_DIR, ExperimentError, load_experiment
from invalloc.config.loader import SCENARIO_DIR, ScenarioError, load_scenario
from invalloc.config.shipped import shipped_folder
from invalloc.sim.kernels import COMPILE_NOTICE

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- lookup order
def test_a_project_folder_adds_and_overrides_scenarios_and_experiments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped_horizon = load_scenario("tiny").scenario.episode.horizon
    tiny = yaml.safe_load((SCENARIO_DIR / "tiny.yaml").read_text())
    tiny["episode"]["horizon"] = shipped_horizon + 7
    (tmp_path / "configs" / "scenarios").mkdir(parents=True)
    (tmp_path / "configs" / "scenarios" / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    (tmp_path / "configs" / "scenarios" / "mine.yaml").write_text(yaml.safe_dump({**tiny, "name": "mine"}))

    overridden = load_scenario("tiny")
    assert overridden.scenario.episode.horizon == shipped_horizon + 7
    assert overridden.source == str(Path("configs") / "scenarios" / "tiny.yaml")
    assert load_scenario("mine").scenario.name == "mine"
    # A path as given comes first: the shipped file by its path is still the shipped one.
    assert load_scenario(SCENARIO_DIR / "tiny.yaml").scenario.episode.horizon == shipped_horizon
    # Shipped scenarios the project does not override come from the package.
    assert Path(load_scenario("retail").source).parent == SCENARIO_DIR

    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "mine.yaml").write_text(
        yaml.safe_dump({"name": "mine", "scenario": "mine", "timesteps": 64, "evaluation": {"every_timesteps": 64}})
    )
    mine = load_experiment("mine")
    assert mine.experiment.name == "mine" and mine.scenario.scenario.name == "mine"
    # The shipped experiment names `tiny`, which now resolves to the project's override.
    assert load_experiment("tiny_smoke").scenario.scenario.episode.horizon == shipped_horizon + 7


def test_unknown_names_list_the_shipped_ones_and_where_a_project_file_goes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScenarioError) as caught:
        load_scenario("nosuch")
    (line,) = caught.value.lines()
    assert line.startswith("nosuch: (file): no such scenario file (shipped scenarios: ")
    assert "retail" in line and "tiny" in line and "./configs/scenarios/nosuch.yaml" in line
    with pytest.raises(ExperimentError) as caught:
        load_experiment("nosuch")
    (line,) = caught.value.lines()
    assert "tiny_smoke" in line and "./experiments/nosuch.yaml" in line


# ----------------------------------------------------------------------------- the wheel
def _site_packages_of(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A throwaway venv with the built wheel installed; returns its python, bin folder and env."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    dist = root / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist)]
        + [str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("invalloc-*.whl")

    target = root / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    site_packages = _site_packages_of(python)
    # Dependencies from this test's environment, added after the install (pip never saw them).
    test_site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_packages / "zz_test_dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(test_site)))

    work = root / "elsewhere"  # outside the repository, nothing in it
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "MLFLOW"))}
    env["NUMBA_CACHE_DIR"] = str(root / "numba-cache")
    env["PATH"] = f"{target / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {"python": python, "bin": target / "bin", "site": site_packages, "cwd": work, "env": env}


def _run(installed: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(args), cwd=installed["cwd"], env=installed["env"], capture_output=True, text=True, timeout=timeout
    )


def test_built_wheel_works_from_a_folder_outside_the_repository(installed):
    """One test (the install is shared, and pytest-xdist would otherwise build it per worker)."""
    # invalloc imports from the new venv, not from the source tree or an editable install.
    out = _run(
        installed,
        str(installed["python"]),
        "-c",
        "import invalloc, importlib.metadata as m; print(invalloc.__file__); print(m.version('invalloc'))",
    )
    assert out.returncode == 0, out.stderr
    location, version = out.stdout.strip().splitlines()
    assert Path(location).is_relative_to(installed["site"])
    assert version == invalloc.__version__
    shipped = installed["site"] / "invalloc"
    for kind, source_folder in (("scenarios", SCENARIO_DIR), ("experiments", EXPERIMENTS_DIR)):
        names = {p.name for p in source_folder.glob("*.yaml")}
        assert names and {p.name for p in (shipped / kind).glob("*.yaml")} == names, kind
    tuned_source = shipped_folder("tuned")
    tuned = {p.relative_to(tuned_source).as_posix() for p in tuned_source.rglob("*.yaml")}
    assert "retail/base_stock.yaml" in tuned
    assert {p.relative_to(shipped / "tuned").as_posix() for p in (shipped / "tuned").rglob("*.yaml")} == tuned

    # invalloc scenario validate retail
    invalloc_command = str(installed["bin"] / "invalloc")
    out = _run(installed, invalloc_command, "scenario", "validate", "retail")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(str(shipped / "scenarios" / "retail.yaml") + ": valid")

    # python -m invalloc --version, invalloc --version
    for command in ([str(installed["python"]), "-m", "invalloc"], [invalloc_command]):
        out = _run(installed, *command, "--version")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"invalloc {invalloc.__version__}"

    # a one-episode simulate: the first after install compiles the kernels, and says so
    out = _run(installed, invalloc_command, "simulate", "--scenario", "tiny", "--episodes", "1", "--json")
    assert out.returncode == 0, out.stderr
    (episode,) = json.loads(out.stdout)["episodes"]
    assert episode["invariants_ok"] and len(episode["per_period_reward"]) == 20
    assert COMPILE_NOTICE in out.stderr
    # the shipped tuned parameters, from the kernels now cached: no notice
    out = _run(
        installed, invalloc_command, "simulate", "--scenario", "tiny", "--policy", "s_S", "--params", "tuned", "--json"
    )
    assert out.returncode == 0, out.stderr
    assert COMPILE_NOTICE not in out.stderr

    # gym.make("invalloc/Allocation-v0", scenario="tiny"), reset and step; a shipped experiment resolves
    code = (
        "import gymnasium as gym\n"
        "import invalloc\n"
        "from invalloc.agents.experiment import load_experiment\n"
        "env = gym.make('invalloc/Allocation-v0', scenario='tiny')\n"
        "obs, info = env.reset(seed=0)\n"
        "obs, reward, terminated, truncated, info = env.step(env.action_space.sample())\n"
        "assert env.observation_space.contains(obs), obs\n"
        "print(type(env.unwrapped).__name__, info['period'])\n"
        "print(load_experiment('tiny_smoke').source)\n"
    )
    out = _run(installed, str(installed["python"]), "-c", code)
    assert out.returncode == 0, out.stderr
    made, experiment = out.stdout.strip().splitlines()[-2:]
    assert made == "AllocationEnv 0"
    assert experiment == str(shipped / "experiments" / "tiny_smoke.yaml")
    out = _run(installed, invalloc_command, "train", "nosuch")
    assert out.returncode == 2 and "tiny_smoke" in out.stderr and "Traceback" not in out.stderr
