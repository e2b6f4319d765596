"""The compiled kernels' cache: the first-run notice and the guard against stale callers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from invalloc.sim import kernels

SRC = Path(kernels.__file__).resolve().parents[3]

# Compiles one tiny kernel (no simulator): seconds, not the full first-run compile.
PROBE = "import numpy as np\nfrom invalloc.sim import kernels\nprint(kernels.any_nonzero(np.ones((2, 2))))\n"


def _probe(cache: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["NUMBA_CACHE_DIR"] = str(cache)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_the_compile_notice_appears_when_a_kernel_compiles_and_not_from_a_warm_cache(tmp_path):
    cold = _probe(tmp_path / "numba")
    assert cold.returncode == 0, cold.stderr
    assert cold.stdout.strip() == "True"
    assert cold.stderr.count(kernels.COMPILE_NOTICE) == 1, cold.stderr
    assert any((tmp_path / "numba").rglob("episode.any_nonzero-*.nbi"))  # numba cached it

    warm = _probe(tmp_path / "numba")
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout.strip() == "True"
    assert kernels.COMPILE_NOTICE not in warm.stderr


def test_a_changed_kernel_module_drops_the_cached_kernels_of_the_package(tmp_path):
    """numba checks a cached function against its own file only; the package's digest covers callees."""
    cache = tmp_path / "numba"
    assert _probe(cache).returncode == 0
    (stamp,) = cache.rglob("invalloc-kernels.sha256")
    (index,) = cache.rglob("episode.any_nonzero-*.nbi")
    stamp.write_text("a digest of other kernel sources")
    warm = _probe(cache)  # the stamp no longer matches: the indexes go, the probe compiles again
    assert warm.returncode == 0, warm.stderr
    assert kernels.COMPILE_NOTICE in warm.stderr
    assert index.is_file() and stamp.read_text() != "a digest of other kernel sources"
