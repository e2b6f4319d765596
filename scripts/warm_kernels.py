"""Compile the simulator's and the environment's numba kernels into numba's cache, at set-up.

Usage (from the repository root; ``scripts/setup.sh`` runs it after installing)::

    .venv/bin/python scripts/warm_kernels.py [--ray-workers]

The first simulation after an install compiles the kernels (about 75 s of CPU, printing
``compiling simulator kernels (first run only…)``); this script pays that once, at install
time, so that the user's first ``invalloc simulate``, ``compare``, ``tune`` or ``train`` starts
from a warm cache. It runs one episode of every rule-based baseline on every shipped scenario (one DC or
several, transfers, unreliable suppliers, one SKU or many) — between them every kernel and
every argument type the shipped scenarios compile — and one episode of the training
environment in the compact and the anchored action modes.

The cache is the one this process uses: numba's ``__pycache__`` beside the kernels, or
``$NUMBA_CACHE_DIR``. With ``--ray-workers`` it also warms the cache Ray workers are given
(:func:`invalloc.cluster.numba_cache_dir`, ``~/.cache/invalloc/numba``) when that is another
folder: it copies the compiled kernels there (numba keeps them under a folder per source
folder, and checks them against the sources' contents, not their paths), then runs the same
episodes on that cache in a second process, which compiles whatever the copy lacks. A warm
cache makes this a few seconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

#: The rule-based baselines (the oracle solves an LP and compiles nothing of its own).
BASELINES = ("base_stock", "s_S", "proportional", "priority", "fixed_split")


def warm() -> None:
    """One episode of each baseline on every shipped scenario (books checked, as ``simulate``
    does), then one episode of the environment in the compact and anchored modes."""
    import numpy as np

    from invalloc.baselines import make_policy
    from invalloc.config.loader import load_scenario
    from invalloc.config.shipped import shipped_names
    from invalloc.env import AllocationEnv
    from invalloc.sim.network import compile_network
    from invalloc.sim.simulator import Simulator, run_episode

    # Every shipped scenario: between them every kernel signature a first run compiles (one DC
    # or several, transfers, unreliable suppliers, single- and multi-SKU sourcing).
    for scenario in shipped_names("scenarios"):
        network = compile_network(load_scenario(scenario))
        for name in BASELINES:
            run_episode(Simulator(network, check_invariants=True), make_policy(name), seed=0)
    environments = (
        AllocationEnv("tiny", info="lean"),
        AllocationEnv("retail", info="lean"),
        AllocationEnv(
            "retail",
            action_mode="anchored",
            anchor=make_policy("proportional"),
            observation="features",
            features=["days_remaining"],
            time_basis=8,
            info="lean",
        ),
    )
    for env in environments:
        env.reset(seed=0)
        # float64 actions (policies) and float32 ones (vector envs, action_space.sample()) alternately.
        actions = (np.full(env.action_space.shape, 0.1), np.full(env.action_space.shape, 0.1, dtype=np.float32))
        period = 0
        while not env.step(actions[period % 2])[3]:
            period += 1


def copy_cache(workers: str) -> int:
    """Copy the kernels compiled beside the sources (``__pycache__``) into the numba cache
    folder ``workers`` as numba lays it out there (one folder per source folder), with the
    kernels' digest stamp; the files copied (0 when this process did not use the sources'
    ``__pycache__``)."""
    import shutil

    from numba.core.caching import _CacheLocator

    if os.environ.get("NUMBA_CACHE_DIR"):
        return 0
    copied = 0
    for folder in sorted((ROOT / "src" / "invalloc").rglob("__pycache__")):
        files = [path for path in folder.iterdir() if path.suffix in (".nbi", ".nbc", ".sha256")]
        if not files:
            continue
        # numba's folder for the sources in ``folder.parent`` (any file of it gives the same).
        target = Path(workers) / _CacheLocator.get_suitable_cache_subpath(str(folder.parent / "x.py"))
        target.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copy2(path, target / path.name)
            copied += 1
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ray-workers", action="store_true", help="also warm the cache Ray workers use (~/.cache/invalloc/numba)"
    )
    args = parser.parse_args()
    start, start_cpu = time.perf_counter(), time.process_time()
    warm()
    print(
        f"numba cache warm ({os.environ.get('NUMBA_CACHE_DIR') or 'beside the kernels'}): "
        f"{time.perf_counter() - start:.1f} s wall, {time.process_time() - start_cpu:.1f} s CPU",
        file=sys.stderr,
    )
    if args.ray_workers:
        from invalloc.cluster import numba_cache_dir

        workers = numba_cache_dir()
        if os.environ.get("NUMBA_CACHE_DIR") != workers:
            try:
                copy_cache(workers)
            except (OSError, ImportError, AttributeError) as error:  # the second process compiles instead
                print(f"warm_kernels.py: the kernels were not copied to {workers} ({error})", file=sys.stderr)
            env = {**os.environ, "NUMBA_CACHE_DIR": workers}
            if subprocess.run([sys.executable, __file__], env=env, check=False).returncode:
                sys.exit(f"warm_kernels.py: the Ray workers' cache {workers} was not warmed (see above)")


if __name__ == "__main__":
    main()
