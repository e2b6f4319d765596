"""The compiled kernels' cache (the first-run notice, the guard against stale callers) and the
compiled sourcing step's arithmetic, bit for bit numpy's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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


# --------------------------------------------------------------------------- the planner's sourcing step
def test_compiled_sums_and_dot_products_are_numpys_bit_for_bit():
    """The compiled sourcing step sums and multiplies exactly as numpy does (pairwise sums, numpy's ddot)."""
    from invalloc.sim.kernels import sourcing

    address = sourcing.numpy_ddot_address()
    if not address:
        pytest.skip("numpy's bundled OpenBLAS not found here: the planner keeps its numpy code")
    rng = np.random.default_rng(3)
    for n in (0, 1, 5, 7, 8, 9, 16, 127, 128, 129, 130, 256, 257, 1000, 2047, 4100):
        x = rng.normal(size=n + 5) * 10.0 ** rng.uniform(-2, 6)
        y = rng.uniform(0.0, 50.0, size=n + 5)
        assert sourcing.array_sum(x, 5, n) == float(x[5 : 5 + n].sum()), n
        assert sourcing.dot(address, x, 5, y, 5, n) == float(x[5 : 5 + n] @ y[5 : 5 + n]), n
    assert sourcing.exact_arithmetic() == address


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"integer_units": "mixed", "approval_action": "cap"},
        {"integer_units": False, "approval_action": "delay", "backorder_replenishment": True},
    ],
)
def test_the_compiled_sourcing_step_requests_what_the_numpy_code_requests(options):
    from invalloc.baselines import make_policy
    from invalloc.config.generate import generate_scenario
    from invalloc.config.loader import parse_scenario
    from invalloc.sim.network import compile_network
    from invalloc.sim.simulator import Simulator

    network = compile_network(parse_scenario(generate_scenario(40, 3, 3, seed=5, **options), "generated", Path.cwd()))
    simulator = Simulator(network, check_invariants=False)
    policy = make_policy("base_stock", None)
    simulator.reset(seed=2)
    policy.reset(network, seed=2)
    sourcing = policy.view.sourcing
    if sourcing._flat is None:
        pytest.skip("numpy's bundled OpenBLAS not found here: the planner keeps its numpy code")
    rng = np.random.default_rng(0)
    shape = (len(network.locations), network.n_skus)
    bound = 0
    while not simulator.done:
        for scale in (1.0, 20.0, 500.0):  # small needs, and needs that every limit cuts
            need = np.where(rng.random(shape) < 0.2, 0.0, rng.uniform(0.0, scale, size=shape))
            compiled, reference = np.zeros(network.n_decisions), np.zeros(network.n_decisions)
            transfers = sourcing.request(simulator, need, compiled)
            expected = sourcing.request_numpy(simulator, need, reference)
            assert compiled.tobytes() == reference.tobytes()
            assert transfers.tobytes() == expected.tobytes()
            bound += int(compiled.sum() < whole_need(need, network))
        simulator.step(policy.act(simulator))
    assert bound > 0  # some limit cut the needs: the limits' branches ran


def whole_need(need: np.ndarray, network) -> float:
    return float(np.where(network.integer_units, np.floor(need + 1e-9), need).sum())
