"""Episode demand drawn ahead on a background thread, and kept for seeds that come back:
never a different episode, only a shorter reset."""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from invalloc.baselines import make_policy
from invalloc.config.generate import generate_scenario
from invalloc.config.loader import load_scenario, parse_scenario
from invalloc.env import AllocationEnv
from invalloc.sim import demand as demand_module
from invalloc.sim.demand import EpisodeDemands
from invalloc.sim.network import compile_network
from invalloc.sim.simulator import Simulator, run_episode, run_episodes


@pytest.fixture(scope="module")
def generated():
    """Poisson, negative binomial and normal streams, all drawn compiled."""
    return compile_network(parse_scenario(generate_scenario(30, 2, 3, seed=5), "generated", Path.cwd()))


@pytest.fixture
def any_size(monkeypatch):
    """Small test episodes drawn ahead too."""
    monkeypatch.setattr(demand_module, "AHEAD_MIN_VALUES", 0)


class Recorded:
    """A simulator's demand draws, with the thread each ran on."""

    def __init__(self, simulator: Simulator) -> None:
        self.threads: list[tuple[int, str]] = []
        draw = simulator.demands._draw

        def recorded(seed: int) -> np.ndarray:
            self.threads.append((seed, threading.current_thread().name))
            return draw(seed)

        simulator.demands._draw = recorded


def _fresh(network, seed: int) -> np.ndarray:
    return Simulator(network, check_invariants=False)._draw_demand(seed)


def test_run_episodes_draws_each_next_demand_ahead_and_runs_the_same_episodes(generated, any_size):
    simulator = Simulator(generated, check_invariants=True)
    recorded = Recorded(simulator)
    policy = make_policy("base_stock", None)
    seeds = [11, 12, 13, 14]
    ahead = [math.fsum(r.reward for r in reports) for reports in run_episodes(simulator, policy, seeds)]
    assert simulator.demands._background()  # compiled draws
    # The first episode's demand was drawn at its reset, every later one on the background thread.
    assert recorded.threads[0] == (11, threading.main_thread().name)
    assert [seed for seed, _ in recorded.threads] == seeds
    assert all(name.startswith("invalloc-demand") for _, name in recorded.threads[1:])
    inline = Simulator(generated, check_invariants=True)
    one_by_one = [math.fsum(r.reward for r in run_episode(inline, policy, seed)) for seed in seeds]
    assert ahead == one_by_one
    np.testing.assert_array_equal(simulator.tier_demand, inline.tier_demand)


def test_a_guess_that_missed_is_dropped_and_the_episode_drawn_now(generated, any_size):
    simulator = Simulator(generated, check_invariants=False)
    recorded = Recorded(simulator)
    simulator.draw_ahead(40)
    simulator.reset(seed=41)
    np.testing.assert_array_equal(simulator.tier_demand, _fresh(generated, 41))
    assert simulator.demands._ahead is None
    assert (41, threading.main_thread().name) in recorded.threads
    simulator.reset(seed=40)  # the dropped guess is drawn again, now
    np.testing.assert_array_equal(simulator.tier_demand, _fresh(generated, 40))
    assert recorded.threads.count((40, threading.main_thread().name)) == 1


def test_demand_is_read_only_and_the_last_episode_is_not_drawn_twice(generated):
    simulator = Simulator(generated, check_invariants=False)
    recorded = Recorded(simulator)
    policy = make_policy("base_stock", None)
    first = run_episode(simulator, policy, 7)
    again = run_episode(simulator, make_policy("fixed", {"quantities": "3"}), 7)
    assert recorded.threads == [(7, threading.main_thread().name)]
    assert first[0].period == again[0].period == 0
    with pytest.raises(ValueError, match="read-only"):
        simulator.tier_demand[0, 0, 0] = 1.0


def test_kept_seeds_are_drawn_once_and_others_not_kept(generated, monkeypatch):
    simulator = Simulator(generated, check_invariants=False)
    recorded = Recorded(simulator)
    simulator.demands.keep([1, 2])
    for seed in [1, 2, 3, 1, 2, 3]:
        simulator.reset(seed=seed)
    assert sorted(seed for seed, _ in recorded.threads) == [1, 2, 3, 3]
    assert simulator.demands.at_hand(1) and simulator.demands.at_hand(3) and not simulator.demands.at_hand(4)
    # More seeds are kept beside them, up to the budget in all: beyond it, nothing more.
    monkeypatch.setattr(demand_module, "KEEP_BYTES", 3 * simulator.tier_demand.nbytes)
    simulator.demands.keep([5, 6])
    for seed in [5, 6, 5, 6, 1, 2]:
        simulator.reset(seed=seed)
    drawn = [seed for seed, _ in recorded.threads]
    assert drawn.count(5) == 1 and drawn.count(6) == 2 and drawn.count(1) == drawn.count(2) == 1


def test_a_failed_draw_ahead_raises_at_the_reset_that_needs_it_and_only_there(any_size):
    def draw(seed: int) -> np.ndarray:
        if seed == 13:
            raise ValueError("lam value too large")
        return np.full((2, 1, 1), float(seed))

    demands = EpisodeDemands(draw, lambda: True)
    demands.get(11)
    demands.draw_ahead(13)
    assert demands.get(12)[0, 0, 0] == 12.0  # the failed guess is never waited for
    demands.draw_ahead(13)
    with pytest.raises(ValueError, match="lam value too large"):
        demands.get(13)
    assert demands.get(14)[1, 0, 0] == 14.0


def test_numpy_drawn_or_small_demand_is_drawn_at_reset(any_size, monkeypatch):
    """numpy draws (a trace's tier split, a bootstrap) would hold the interpreter, and a small
    episode's draw costs less than handing it over: both are drawn at reset."""
    network = compile_network(load_scenario("retail"))
    simulator = Simulator(network, check_invariants=False)
    demands = EpisodeDemands(simulator._draw_demand, lambda: False)
    demands.get(2)
    demands.draw_ahead(3)
    assert demands._ahead is None
    assert simulator.demands._background()  # retail's draws are compiled …
    monkeypatch.setattr(demand_module, "AHEAD_MIN_VALUES", simulator.tier_demand.size + 1)
    simulator.draw_ahead(3)  # … but small
    assert simulator.demands._ahead is None and not simulator.demands.ahead_pays()
    monkeypatch.setattr(demand_module, "AHEAD_MIN_VALUES", simulator.tier_demand.size)
    simulator.draw_ahead(3)
    assert simulator.demands._ahead is not None and simulator.demands._ahead[1] == 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_for_itself(generated, any_size):
    simulator = Simulator(generated, check_invariants=False)
    expected = _fresh(generated, 21)
    simulator.draw_ahead(21)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's background thread did not come along
        try:
            simulator.reset(seed=21)
            simulator.draw_ahead(22)
            simulator.reset(seed=22)
            same = np.array_equal(simulator.tier_demand, _fresh(generated, 22))
            ok = np.array_equal(Simulator(generated, check_invariants=False)._draw_demand(21), expected) and same
            os.write(write, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 2)
    os.waitpid(pid, 0)
    assert answer == b"ok"
    simulator.reset(seed=21)
    np.testing.assert_array_equal(simulator.tier_demand, expected)


def test_the_env_draws_the_next_automatic_resets_demand_ahead(any_size):
    def episodes(draw_ahead: bool) -> tuple[list, Recorded]:
        env = AllocationEnv("retail", periods=3)
        recorded = Recorded(env.simulator)
        if not draw_ahead:
            env.simulator.draw_ahead = lambda seed: None
        seen = [env.reset(seed=5)[0]]
        rng = np.random.default_rng(0)
        for _ in range(3):
            truncated = False
            while not truncated:
                observation, reward, _, truncated, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
                seen += [observation, reward]
            seen.append(env.reset()[0])
        return seen, recorded

    ahead, recorded = episodes(True)
    inline, _ = episodes(False)
    assert len(ahead) == len(inline)
    for a, b in zip(ahead, inline, strict=True):
        np.testing.assert_array_equal(a, b)
    names = [name for _, name in recorded.threads]
    # reset(seed=5) and the first reset() draw now; each later one was drawn ahead.
    assert names[:2] == [threading.main_thread().name] * 2
    assert names[2:] and all(name.startswith("invalloc-demand") for name in names[2:])


def test_compare_and_simulate_draw_ahead_and_give_the_same_results(any_size, monkeypatch, tmp_path):
    from invalloc.evaluation.compare import run_comparison
    from invalloc.evaluation.simulation import run_simulation

    threads: list[str] = []
    draw = Simulator._draw_demand

    def recorded(self, seed: int) -> np.ndarray:
        threads.append(threading.current_thread().name)
        return draw(self, seed)

    monkeypatch.setattr(Simulator, "_draw_demand", recorded)

    def results():
        comparison = run_comparison(
            "retail", ["base_stock", "s_S"], 3, 4, processes=1, progress=False, log_to_mlflow=False,
            tracking_uri=f"sqlite:///{tmp_path}/unused.db",
        )  # fmt: skip
        episodes = {spec: [r.kpis for r in rows] for spec, rows in comparison.results.items()}
        simulated = run_simulation(load_scenario("retail"), "base_stock", episodes=3, seed=4).episodes
        return episodes, simulated

    ahead = results()
    assert sum(name.startswith("invalloc-demand") for name in threads) >= 3  # compare's 2, simulate's 2
    threads.clear()
    monkeypatch.setattr(Simulator, "draw_ahead", lambda self, seed: None)
    assert results() == ahead
    assert not any(name.startswith("invalloc-demand") for name in threads)
