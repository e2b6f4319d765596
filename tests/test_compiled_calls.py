"""Hot kernels called straight at their compiled code (:class:`BoundKernel`): the same results
as through numba's dispatcher, a replaced function honoured at once, a fresh binding after
``unbind`` and in copies, and requests of any layout made the one type the period is bound to."""

from __future__ import annotations

import copy
import pickle
import sys
import types

import numpy as np
import pytest
from numba import njit

from invalloc.baselines import make_policy
from invalloc.config.loader import load_scenario
from invalloc.env import AllocationEnv
from invalloc.sim import kernels
from invalloc.sim.compiled_calls import BoundKernel
from invalloc.sim.network import compile_network
from invalloc.sim.simulator import Simulator


@njit(cache=False)
def _weighted_sum(values, weight):
    total = 0.0
    for value in values:
        total += value * weight
    return total


def _namespace() -> dict:
    return {"__name__": __name__, "weighted_sum": _weighted_sum}


def test_the_first_call_binds_and_the_later_ones_give_the_dispatchers_results():
    kernel = BoundKernel(_namespace(), "weighted_sum")
    values = np.arange(5.0)
    assert not kernel.bound
    assert kernel(values, 2.0) == 20.0
    assert kernel.bound
    for weight in (0.5, -3.0, 1e300):
        assert kernel(values, weight) == _weighted_sum(values, weight)
    kernel.unbind()
    assert not kernel.bound
    assert kernel(values + 1.0, 1.0) == 15.0 and kernel.bound


def test_a_replaced_function_is_called_from_the_next_call_on():
    namespace = _namespace()
    kernel = BoundKernel(namespace, "weighted_sum")
    values = np.ones(3)
    assert kernel(values, 1.0) == 3.0 and kernel.bound
    calls = []

    def wrapper(*args):
        calls.append(args)
        return _weighted_sum(*args)

    namespace["weighted_sum"] = wrapper  # a profiler's timer, say
    assert kernel(values, 2.0) == 6.0 and kernel(values, 3.0) == 9.0
    assert len(calls) == 2 and not kernel.bound  # a plain function has no entry point
    namespace["weighted_sum"] = _weighted_sum
    assert kernel(values, 4.0) == 12.0 and kernel.bound


def test_copies_and_pickles_are_unbound_and_look_the_function_up_in_the_module():
    module = types.ModuleType("invalloc_bound_kernel_probe")
    module.weighted_sum = _weighted_sum
    sys.modules[module.__name__] = module
    try:
        kernel = BoundKernel(module, "weighted_sum")
        kernel(np.ones(2), 1.0)
        for twin in (copy.deepcopy(kernel), pickle.loads(pickle.dumps(kernel))):
            assert not twin.bound
            assert twin(np.ones(4), 2.0) == 8.0 and twin.bound
    finally:
        del sys.modules[module.__name__]


def test_the_simulators_hot_kernels_are_bound_after_a_period_and_unbound_at_reset():
    simulator = Simulator(compile_network(load_scenario("retail")))
    policy = make_policy("base_stock", None)
    policy.reset(simulator.network, seed=1)
    simulator.reset(seed=1)
    assert not simulator._run_period.bound
    simulator.step(policy.act(simulator))
    simulator.step(policy.act(simulator))
    assert simulator._run_period.bound and simulator._bills_and_headroom.bound
    simulator.reset(seed=2)
    assert not simulator._run_period.bound


@pytest.mark.parametrize("layout", ["strided", "read-only", "list"])
def test_requests_of_any_layout_give_the_contiguous_requests_period(layout):
    """The compiled period is bound to C-contiguous writable float64 requests: anything else a
    policy returns is copied to that first, so the entry point never reads it as another type."""
    network = compile_network(load_scenario("retail"))
    policy = make_policy("base_stock", None)
    reports = {}
    for kind in ("contiguous", layout):
        simulator = Simulator(network, check_invariants=True)
        simulator.reset(seed=4)
        policy.reset(network, seed=4)
        reports[kind] = []
        while not simulator.done:
            requests = np.ascontiguousarray(policy.act(simulator), dtype=np.float64)
            if kind == "strided":
                wide = np.zeros(2 * requests.size)
                wide[::2] = requests
                requests = wide[::2]
                assert not requests.flags.c_contiguous
            elif kind == "read-only":
                requests.flags.writeable = False
            elif kind == "list":
                requests = requests.tolist()
            report = simulator.step(requests)
            reports[kind].append((report.reward, report.cash, report.on_hand.tobytes()))
        assert simulator._run_period.bound
    assert len(reports[layout]) == network.scenario.episode.horizon
    assert reports[layout] == reports["contiguous"]


def test_the_env_binds_its_mapping_and_observation_and_keeps_its_results():
    env = AllocationEnv("retail", info="lean")
    twin = AllocationEnv("retail", info="lean")
    rng = np.random.default_rng(3)
    env.reset(seed=8)
    twin.reset(seed=8)
    for step in range(60):
        action = rng.uniform(-1.2, 1.2, env.action_space.shape).astype(np.float32 if step % 2 else np.float64)
        if step % 5 == 4:
            action.flags.writeable = False  # read-only: through the dispatcher
        observation, reward, _, truncated, _ = env.step(action)
        # The twin never binds: every call through numba's dispatcher.
        for kernel in (*twin.actions._bound_mapping, twin.observations._bound_record_and_observe):
            kernel.unbind()
        twin.simulator._run_period.unbind()
        expected, expected_reward, _, _, _ = twin.step(action)
        assert np.array_equal(observation, expected) and reward == expected_reward
        if truncated:
            env.reset(seed=step)
            twin.reset(seed=step)
    assert all(kernel.bound for kernel in env.actions._bound_mapping)
    assert env.observations._bound_record_and_observe.bound and env.simulator._run_period.bound
    assert kernels.run_period.__module__ == "invalloc.sim.kernels.period"  # the package's own, not replaced
