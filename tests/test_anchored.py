"""Anchored actions (a bounded correction to a tuned rule) and ARS on common random numbers."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.vec_env import DummyVecEnv

from invalloc.agents.anchor import build_anchor, resolve_anchor
from invalloc.agents.ars import CommonRandomNumbers, block_seed
from invalloc.baselines.tuning import load_params
from invalloc.env import AllocationEnv
from invalloc.sim.policy import PolicyError

#: Every shipped scenario with a tuned rule of each kind that can anchor (order-up-to levels).
ANCHORS = [
    ("retail", "proportional@tuned"),
    ("retail", "base_stock@tuned"),
    ("retail", "s_S@tuned"),
    ("orgym_invmanagement_v1", "base_stock@tuned"),
    ("orgym_invmanagement_v0", "s_S@tuned"),
    ("tiny", "priority@tuned"),
]


def anchored_env(scenario: str, spec: str, **kwargs) -> AllocationEnv:
    return AllocationEnv(
        scenario, action_mode="anchored", anchor=build_anchor(resolve_anchor(spec, scenario)), **kwargs
    )


@pytest.mark.parametrize(("scenario", "spec"), ANCHORS)
def test_action_zero_is_the_tuned_rule_exactly(scenario, spec):
    """At action 0 every period's request equals the tuned rule's, and so does the episode's reward."""
    env = anchored_env(scenario, spec)
    rule = build_anchor(resolve_anchor(spec, scenario))
    env.reset(seed=11)
    simulator = env.simulator
    rule.reset(simulator.network)
    total, done = 0.0, False
    while not done:
        expected = rule.act(simulator)
        assert np.array_equal(env.actions.requests(np.zeros(env.action_space.shape)), expected)
        _, _, _, done, info = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
        total += info["reward_unscaled"]
    # The same demand under the rule alone, on a fresh simulator with the env's simulator seed.
    twin = anchored_env(scenario, spec)
    twin.reset(seed=11)
    alone = build_anchor(resolve_anchor(spec, scenario))
    alone.reset(twin.simulator.network)
    reward = 0.0
    while not twin.simulator.done:
        reward += twin.simulator.step(alone.act(twin.simulator)).undiscounted_reward
    assert total == pytest.approx(reward, rel=0, abs=1e-6)


def test_resolved_anchor_carries_the_shipped_parameters():
    anchor = resolve_anchor("proportional@tuned", "retail")
    _, params = load_params("tuned", "proportional", "retail")
    assert anchor == {"policy": "proportional", "params": params, "spec": "proportional@tuned"}
    assert resolve_anchor("base_stock:cover=2.5", "retail")["params"] == {"cover": "2.5"}


def test_a_correction_moves_levels_and_keeps_the_books():
    """A non-zero action changes the requests; every period's books still balance (checked)."""
    env = anchored_env("retail", "proportional@tuned", check_invariants=True)
    env.reset(seed=3)
    zero = env.actions.requests(np.zeros(env.action_space.shape))
    assert not np.array_equal(env.actions.requests(np.ones(env.action_space.shape)), zero)
    low = np.zeros(env.action_space.shape, dtype=np.float32)
    low[env.action_names.index("level_scale/sku/sku01")] = -1.0
    for _ in range(8):
        _, reward, _, _, info = env.step(low)
        assert np.isfinite(reward) and info["projection_distance"] >= 0
    gymnasium_check_env(anchored_env("retail", "proportional@tuned", periods=6))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action_mode": "anchored"}, "needs an anchor"),
        ({"action_mode": "compact", "anchor": "base_stock"}, "only action_mode='anchored'"),
    ],
)
def test_anchor_and_mode_must_agree(kwargs, message):
    if isinstance(kwargs.get("anchor"), str):
        kwargs = {**kwargs, "anchor": build_anchor(resolve_anchor(kwargs["anchor"], "tiny"))}
    with pytest.raises(ValueError, match=message):
        AllocationEnv("tiny", **kwargs)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonsense_rule", "unknown policy 'nonsense_rule'"),
        ("fixed:quantity=3", "anchors on a rule with order-up-to levels"),
        ("base_stock:cover=-1", "cover=-1"),
        ("base_stock@missing.yaml", "params file not found"),
        ("base_stock:cover", "not KEY=VALUE"),
    ],
)
def test_bad_anchor_is_one_line(spec, message):
    with pytest.raises(PolicyError, match=message) as caught:
        resolve_anchor(spec, "retail")
    assert "\n" not in str(caught.value)


def test_discounted_rewards_sum_to_the_scenario_objective():
    plain = anchored_env("orgym_invmanagement_v1", "base_stock@tuned")
    discounted = anchored_env("orgym_invmanagement_v1", "base_stock@tuned", discount_rewards=True)
    totals = []
    for env in (plain, discounted):
        env.reset(seed=5)
        total, done = 0.0, False
        while not done:
            _, reward, _, done, _ = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
            total += reward * env.reward_scale
        totals.append(total)
    discount = plain.network.scenario.episode.discount
    assert discount < 1
    assert totals[1] < totals[0]
    discounted.reset(seed=5)
    rule_total = 0.0
    rule = build_anchor(resolve_anchor("base_stock@tuned", "orgym_invmanagement_v1"))
    rule.reset(discounted.simulator.network)
    while not discounted.simulator.done:
        rule_total += discounted.simulator.step(rule.act(discounted.simulator)).reward
    assert totals[1] == pytest.approx(rule_total, rel=1e-9)


def test_feature_subset_observation():
    env = anchored_env(
        "retail", "proportional@tuned", observation="features", features=["days_remaining", "season_demand_index"]
    )
    obs, _ = env.reset(seed=0)
    assert env.feature_names == ["days_remaining", "season_demand_index"]
    assert obs.shape == (2,) and obs[0] == pytest.approx(52 * 7)
    with pytest.raises(ValueError, match="not among the scenario's features"):
        AllocationEnv("retail", observation="features", features=["days_left"])


def test_common_random_numbers_give_every_candidate_the_same_demand():
    """Each explicit reset restarts the same episode sequence until the block seed changes."""
    vec = CommonRandomNumbers(DummyVecEnv([lambda: AllocationEnv("tiny", periods=6)] * 2))

    def demand_of_two_episodes() -> list[np.ndarray]:
        vec.reset()
        seen = []
        for _ in range(12):  # two episodes per sub-env
            _, _, _, infos = vec.step(np.zeros((2, vec.action_space.shape[0]), dtype=np.float32))
            seen.append(np.array([info["kpis"]["revenue"] for info in infos]))
        return seen

    vec.block_seed = block_seed(0, 0)
    first = demand_of_two_episodes()
    again = demand_of_two_episodes()
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    vec.block_seed = block_seed(0, 1)
    other = demand_of_two_episodes()
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    assert block_seed(0, 1) == block_seed(0, 1) != block_seed(1, 1)


TINY_ARS = """
name: tiny_ars
description: ARS anchored on a deliberately short base stock (cover 0.25 periods) on tiny
scenario: tiny
algorithm: ARS
hyperparameters: {n_delta: 4, n_top: 2, delta_std: 0.2, learning_rate: 0.1, n_eval_episodes: 2}
policy: {net_arch: []}
env: {n_envs: 1, action_mode: anchored, anchor: "base_stock:cover=0.25", observation: features}
vec_normalize: {norm_reward: false}
timesteps: 6000
seed: 0
evaluation: {every_timesteps: 2000, episodes: 8}
checkpoint_every_timesteps: 6000
"""


def test_short_ars_training_improves_on_its_anchor(tmp_path, mlflow_uri):
    """ARS starts at the rule it corrects and, within a few thousand steps, beats it on the
    held-out evaluation episodes (the same demand for both); the saved policy reloads from
    JSON and npz and decides as the trained one did."""
    from invalloc.agents.learned import load_learned_policy
    from invalloc.agents.training import train
    from invalloc.baselines import make_policy
    from invalloc.config.loader import load_scenario
    from invalloc.sim.network import compile_network
    from invalloc.sim.simulator import Simulator, run_episode

    path = tmp_path / "tiny_ars.yaml"
    path.write_text(TINY_ARS)
    result = train(path, tracking_uri=mlflow_uri, progress=False)
    simulator = Simulator(compile_network(load_scenario("tiny")))
    seeds = [1_000_000 + k for k in range(8)]  # the experiment's evaluation episodes

    def mean_reward(policy) -> float:
        return float(np.mean([sum(r.reward for r in run_episode(simulator, policy, seed)) for seed in seeds]))

    anchor = mean_reward(make_policy("base_stock", {"cover": "0.25"}))
    assert result.best_reward > anchor + 100, (result.best_reward, anchor)
    learned = load_learned_policy(f"run:{result.run_id}", mlflow_uri)
    assert learned.action_mode == "anchored" and learned.anchor["params"] == {"cover": "0.25"}
    assert mean_reward(learned) == pytest.approx(result.best_reward, rel=1e-9)


def test_horizon_phase_features_peak_in_their_part_of_the_episode():
    env = AllocationEnv("retail", observation="features", features=["days_remaining"], time_basis=4)
    assert env.feature_names == ["days_remaining"] + [f"horizon_phase_{k}_of_4" for k in range(1, 5)]
    obs, _ = env.reset(seed=0)
    peaks = [int(np.argmax(obs[1:]))]
    for period in range(1, 52):
        obs, *_ = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
        if period in (20, 32, 51):
            peaks.append(int(np.argmax(obs[1:])))
    assert peaks == [0, 1, 2, 3]
    assert np.all((obs[1:] >= 0) & (obs[1:] <= 1))
    with pytest.raises(ValueError, match="time_basis"):
        AllocationEnv("retail", observation="full", time_basis=3)
    with pytest.raises(ValueError, match="time_basis"):
        AllocationEnv("retail", observation="features", time_basis=-1)


def test_same_seed_same_ars_training(tmp_path, mlflow_uri):
    """The update seeds come from the run's seed and the update number: two runs agree exactly."""
    from invalloc.agents.learned import load_learned_policy
    from invalloc.agents.training import train

    path = tmp_path / "tiny_ars.yaml"
    path.write_text(TINY_ARS.replace("timesteps: 6000", "timesteps: 2000"))
    first = train(path, tracking_uri=mlflow_uri, progress=False)
    second = train(path, tracking_uri=mlflow_uri, progress=False)
    assert first.run_id != second.run_id
    assert first.evaluations == second.evaluations
    weights = [load_learned_policy(f"run:{r.run_id}", mlflow_uri).model.state_dict() for r in (first, second)]
    assert all(np.array_equal(weights[0][k].numpy(), weights[1][k].numpy()) for k in weights[0])
    assert any(np.abs(v.numpy()).sum() > 0 for v in weights[0].values())  # it moved off the anchor
