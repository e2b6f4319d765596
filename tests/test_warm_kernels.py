"""``scripts/warm_kernels.py`` (run by ``scripts/setup.sh``) leaves nothing for a first run to compile.

From an empty numba cache: the script compiles (it prints the compile notice), then
``simulate`` on every shipped scenario and an episode of the training environment find every
kernel in the cache and print no notice.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from invalloc.sim.kernels import COMPILE_NOTICE

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("tiny", "retail", "base_stock", "newsvendor", "orgym_invmanagement_v0", "orgym_invmanagement_v1")
#: One episode of the training environment as ``invalloc train`` builds it (lean info), compact actions.
ENV_EPISODE = """
from invalloc.env import AllocationEnv
for scenario in ("tiny", "retail"):
    env = AllocationEnv(scenario, info="lean")
    env.reset(seed=1)
    while not env.step(env.action_space.sample())[3]:
        pass
"""


def _run(command: list[str], cache: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_after_warm_kernels_nothing_compiles(tmp_path: Path) -> None:
    cache = tmp_path / "numba-cache"
    warmed = _run([sys.executable, str(ROOT / "scripts" / "warm_kernels.py")], cache, tmp_path)
    assert COMPILE_NOTICE in warmed.stderr  # an empty cache: it compiled
    assert any(cache.rglob("*.nbi"))
    for scenario in SHIPPED:
        done = _run(
            [sys.executable, "-m", "invalloc.cli", "simulate", "--scenario", scenario, "--json"], cache, tmp_path
        )
        assert COMPILE_NOTICE not in done.stderr, scenario
    done = _run([sys.executable, "-c", ENV_EPISODE], cache, tmp_path)
    assert COMPILE_NOTICE not in done.stderr


def test_the_ray_workers_cache_is_copied_from_the_warm_cache_and_compiles_nothing(tmp_path: Path) -> None:
    """``--ray-workers`` copies the kernels compiled beside the sources into the workers' numba
    cache folder (numba's layout there): a process on that copy compiles nothing."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        pytest.skip("this process's kernels are not cached beside the sources")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import warm_kernels
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = str(ROOT / "src")
    # The sources' cache holds the environment's kernels (compiled here if a test run came first).
    done = subprocess.run([sys.executable, "-c", ENV_EPISODE], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    workers = tmp_path / "workers"
    assert warm_kernels.copy_cache(str(workers)) > 0
    on_copy = _run([sys.executable, "-c", ENV_EPISODE], workers, tmp_path)
    assert COMPILE_NOTICE not in on_copy.stderr
