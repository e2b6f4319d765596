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


def _generated_simulation(options: dict, periods: int = 6):
    from invalloc.baselines import make_policy
    from invalloc.config.generate import generate_scenario
    from invalloc.config.loader import parse_scenario
    from invalloc.sim.network import compile_network
    from invalloc.sim.simulator import Simulator

    network = compile_network(parse_scenario(generate_scenario(30, 3, 3, seed=7, **options), "generated", Path.cwd()))
    simulator = Simulator(network, check_invariants=True)
    policy = make_policy("base_stock", None)
    simulator.reset(seed=4)
    policy.reset(network, seed=4)
    for _ in range(periods):
        simulator.step(policy.act(simulator))
    return network, simulator, policy


@pytest.mark.parametrize("options", [{}, {"integer_units": "mixed"}])
def test_the_compiled_open_allocation_splits_as_the_numpy_rule(options):
    network, simulator, policy = _generated_simulation(options)
    view = policy.view
    rng = np.random.default_rng(1)
    for weight in (None, rng.uniform(0.5, 2.0, size=len(network.channels))):
        requests = np.zeros(network.n_decisions)
        transfers = policy._replenish(simulator, requests)
        policy._allocate(simulator, requests, transfers, weight)
        # The numpy rule: each lane's share of the DC's stock left to sell, within its channel's cap.
        available = view.available_to_customers(simulator, transfers)
        share = network.channel_max_share[view.allocation_channels]
        if weight is not None:
            share = share * weight[view.allocation_channels]
        total = (view.allocation_incidence @ share)[view.allocation_locations]
        given = np.floor((share / np.maximum(total, 1.0))[:, None] * available[view.allocation_locations])
        expected = np.minimum(given, view.channel_caps(available))
        assert requests[view.allocation_positions].tobytes() == expected.tobytes()
        assert expected.sum() > 0


@pytest.mark.parametrize("allocation", ["proportional", "fixed_split"])
@pytest.mark.parametrize("options", [{}, {"integer_units": "mixed"}])
def test_the_compiled_split_by_weight_splits_as_the_numpy_rule(options, allocation):
    from invalloc.baselines import make_policy

    network, simulator, _ = _generated_simulation(options)
    policy = make_policy(allocation, None)
    policy.reset(network, seed=4)
    view = policy.view
    rng = np.random.default_rng(3)
    weights = [None, rng.uniform(0.5, 2.0, size=len(network.channels)), np.zeros(len(network.channels))]
    for weight in weights:  # no weights, a learner's corrections, and none at all (even shares)
        requests = np.zeros(network.n_decisions)
        transfers = policy._replenish(simulator, requests)
        policy._allocate(simulator, requests, transfers, weight)
        # The numpy rule: each lane's weighted share of the DC's stock left to sell, within its
        # channel's cap.
        available = view.available_to_customers(simulator, transfers)
        reference = np.zeros(network.n_decisions)
        view.allocate_by_weight(simulator, reference, policy._weights(simulator, weight), available)
        expected = np.minimum(reference[view.allocation_positions], view.channel_caps(available))
        assert requests[view.allocation_positions].tobytes() == expected.tobytes()
        assert expected.sum() > 0


def test_partial_deliveries_draw_as_one_binomial_call_per_unreliable_lane():
    network, simulator, _ = _generated_simulation({"integer_units": "mixed"}, periods=1)
    lanes = np.flatnonzero(network.purchase_reliability < 1)
    assert lanes.size and network.integer_units.any() and not network.integer_units.all()
    rng = np.random.default_rng(2)
    orders = np.round(rng.uniform(0.0, 40.0, size=(len(network.purchase_location), network.n_skus)), 1)
    orders[rng.random(orders.shape) < 0.3] = 0.0
    simulator._supply_rng = np.random.default_rng(9)
    shipped = simulator._partial_delivery(orders).copy()
    # As it was drawn lane by lane in numpy.
    draws = np.random.default_rng(9)
    expected = orders.copy()
    integer = network.integer_units
    for lane in lanes:
        reliability = float(network.purchase_reliability[lane])
        row = orders[lane] * reliability
        row[integer] = np.floor(row[integer])
        whole = np.flatnonzero(integer & (orders[lane] > 0) & (orders[lane] < 2.0**53))
        row[whole] = draws.binomial(orders[lane, whole].astype(np.int64), reliability)
        expected[lane] = row
    assert shipped.tobytes() == expected.tobytes()
    assert (shipped[lanes] < orders[lanes]).any()  # some units did not arrive


def test_packed_arrays_are_borrowed_from_their_owner_and_keep_it_alive():
    """The structrefs hold their arrays without numba's reference counts (borrowed): the packed
    proxy keeps the owner's arrays alive as long as it lives, and only as long, and the
    kernels read the owner's memory, not a copy."""
    import gc
    import weakref

    from invalloc.config.loader import load_scenario
    from invalloc.sim.kernels.ledger import CASH
    from invalloc.sim.network import compile_network
    from invalloc.sim.simulator import Simulator

    sim = Simulator(compile_network(load_scenario("tiny")), check_invariants=False)
    sim.reset(seed=0)
    packed = sim._episode_arrays
    balance = weakref.ref(sim.ledger.balance)
    window, credit_line, buffer = sim._payment_window + 1, sim._credit_line, sim._buffer
    opening_cash = sim.cash
    del sim
    gc.collect()
    assert balance() is not None  # kept alive by the packed arrays alone
    balance()[CASH] += 1.0  # the kernel reads the owner's memory
    assert kernels.money_outlook(packed, 0, window, credit_line, buffer, 1)[0] == opening_cash + 1.0
    del packed
    gc.collect()
    assert balance() is None  # and released with them
