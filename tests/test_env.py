"""The Gymnasium environment: checkers, seeding, common random numbers, bad actions, vector envs."""

from __future__ import annotations

import hashlib
import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import invalloc  # noqa: F401  (registers invalloc/Allocation-v0)
from invalloc.config.loader import SCENARIO_DIR
from invalloc.env import AllocationEnv

SHIPPED = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
SHORT = {"periods": 12}


@pytest.mark.parametrize("scenario", SHIPPED)
def test_both_checkers_pass(scenario):
    env = gym.make("invalloc/Allocation-v0", scenario=scenario, periods=12)
    gymnasium_check_env(env.unwrapped, skip_render_check=False)
    sb3_check_env(AllocationEnv(scenario, periods=12), warn=False)


def test_raw_action_mode_passes_the_checkers():
    env = gym.make("invalloc/Allocation-v0", scenario="retail", action_mode="raw", periods=8)
    assert env.action_space.shape == (env.unwrapped.network.n_decisions,)
    gymnasium_check_env(env.unwrapped)


def episode_digest(env: AllocationEnv, seed: int, actions: np.random.Generator) -> str:
    digest = hashlib.sha256()
    obs, info = env.reset(seed=seed)
    digest.update(obs.tobytes())
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(actions.uniform(-1, 1, env.action_space.shape))
        digest.update(obs.tobytes())
        digest.update(np.float64(reward).tobytes())
        digest.update(json.dumps(info, sort_keys=True, default=lambda v: np.asarray(v).tolist()).encode())
        done = terminated or truncated
    return digest.hexdigest()


def test_reset_seed_reproduces_the_episode_bit_for_bit():
    env = AllocationEnv("retail", periods=20)
    first = episode_digest(env, 3, np.random.default_rng(0))
    other = episode_digest(env, 4, np.random.default_rng(0))
    again = episode_digest(AllocationEnv("retail", periods=20), 3, np.random.default_rng(0))
    assert first == again
    assert first != other


def test_demand_is_the_same_whatever_the_policy_does():
    env = AllocationEnv("retail", **SHORT)
    demands = []
    for low in (-1.0, 1.0):
        env.reset(seed=11)
        seen = []
        done = False
        while not done:
            _, _, _, done, info = env.step(np.full(env.action_space.shape, low))
            seen.append(env.unwrapped._last_report.demand.copy())
        demands.append(np.stack(seen))
    np.testing.assert_array_equal(demands[0], demands[1])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_action_raises_and_leaves_the_state_untouched(bad):
    env = AllocationEnv("tiny", **SHORT)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    before = (env.simulator.period, env.simulator.on_hand.copy(), env.simulator.ledger.balance.copy())
    action = np.zeros(env.action_space.shape)
    action[0] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        env.step(action)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(env.action_space.shape[0] + 1))
    assert env.simulator.period == before[0]
    np.testing.assert_array_equal(env.simulator.on_hand, before[1])
    np.testing.assert_array_equal(env.simulator.ledger.balance, before[2])


def test_executed_decisions_respect_every_rule_and_the_books_balance():
    """Extreme actions on retail with every invariant checked: nothing breaks, rules bind."""
    env = AllocationEnv("retail", check_invariants=True)
    rng = np.random.default_rng(5)
    env.reset(seed=5)
    bound = set()
    done = False
    while not done:
        action = rng.choice([-1.0, 1.0], size=env.action_space.shape)
        _, reward, _, done, info = env.step(action)
        bound |= set(info["bound_rules"])
        assert np.isfinite(reward)
        assert info["kpis"]["cash"] == pytest.approx(env.simulator.cash)
    assert {"cash_rule", "channel_share"} & bound


def test_info_and_truncation():
    env = AllocationEnv("orgym_invmanagement_v1")
    env.reset(seed=1)
    for period in range(30):
        _, reward, terminated, truncated, info = env.step(np.zeros(env.action_space.shape))
        assert not terminated
        assert truncated == (period == 29)
        assert set(info) >= {"projection_distance", "bound_rules", "constraint_cost", "profit", "kpis"}
        assert reward == pytest.approx(info["reward_unscaled"] / env.reward_scale)
    with pytest.raises(RuntimeError):
        env.step(np.zeros(env.action_space.shape))


def _same_info(a, b) -> bool:
    """Deep equality of two infos: same keys, arrays equal with the same dtype, numbers equal."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_info(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("penalty", [0.0, 0.5])
def test_lean_info_plays_the_same_episode_and_gives_the_full_info_on_demand(penalty):
    """info="lean" (what training uses): the same float32 observations and rewards bit for bit,
    a step info of ``period`` and ``constraint_cost`` only, and period_info() the full info."""
    full = AllocationEnv("retail", projection_penalty=penalty, **SHORT)
    lean = AllocationEnv("retail", projection_penalty=penalty, info="lean", **SHORT)
    obs_full, _ = full.reset(seed=4)
    obs_lean, _ = lean.reset(seed=4)
    with pytest.raises(RuntimeError, match="period_info"):
        lean.period_info()
    actions = np.random.default_rng(3)
    done = False
    while not done:
        assert obs_lean.dtype == np.float32 and obs_lean.tobytes() == obs_full.tobytes()
        action = actions.uniform(-1.5, 1.5, full.action_space.shape)
        obs_full, r_full, term_full, trunc_full, info_full = full.step(action)
        obs_lean, r_lean, term_lean, trunc_lean, info_lean = lean.step(action)
        assert (r_lean, term_lean, trunc_lean) == (r_full, term_full, trunc_full)
        assert set(info_lean) == {"period", "constraint_cost"}
        assert _same_info(dict(info_lean), {k: info_full[k] for k in ("period", "constraint_cost")})
        assert _same_info(dict(lean.period_info()), dict(info_full))
        done = trunc_lean
    assert obs_lean.tobytes() == obs_full.tobytes()
    with pytest.raises(ValueError, match="info='short'"):
        AllocationEnv("tiny", info="short")


def test_lean_info_carries_what_training_reads():
    """Through SB3's DummyVecEnv and VecMonitor (as ``invalloc train`` wraps it) the lean env gives
    the same episode returns and lengths and the same per-rule constraint costs as the full one."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    seen = {}
    for kind in ("full", "lean"):
        vec = VecMonitor(DummyVecEnv([lambda kind=kind: AllocationEnv("tiny", info=kind, **SHORT)]))
        vec.seed(7)
        vec.reset()
        actions = np.random.default_rng(0)
        episodes, costs = [], []
        for _ in range(2 * SHORT["periods"]):
            _, _, dones, infos = vec.step(actions.uniform(-1, 1, (1, *vec.action_space.shape)))
            costs.append(infos[0]["constraint_cost"])
            if dones[0]:
                episodes.append((infos[0]["episode"]["r"], infos[0]["episode"]["l"]))
        seen[kind] = (episodes, np.stack(costs))
    assert len(seen["lean"][0]) == 2 and seen["lean"][0] == seen["full"][0]
    np.testing.assert_array_equal(seen["lean"][1], seen["full"][1])


def test_projection_penalty_lowers_the_reward_by_the_distance():
    plain = AllocationEnv("tiny", **SHORT)
    penalised = AllocationEnv("tiny", projection_penalty=0.5, **SHORT)
    for env in (plain, penalised):
        env.reset(seed=2)
    action = np.ones(plain.action_space.shape)
    _, r_plain, *_, info = plain.step(action)
    _, r_penalised, *_ = penalised.step(action)
    assert info["projection_distance"] > 0
    assert r_penalised < r_plain


def test_render_ansi():
    env = AllocationEnv("tiny", render_mode="ansi", **SHORT)
    env.reset(seed=0)
    assert "period 0" in env.render()
    env.step(env.action_space.sample())
    text = env.render()
    assert "period 1/12" in text and "profit" in text


def test_observation_features_are_named_and_scaled():
    env = AllocationEnv("retail")
    obs, _ = env.reset(seed=0)
    assert len(env.feature_names) == obs.shape[0] == len(set(env.feature_names))
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    named = dict(zip(env.feature_names, obs, strict=True))
    assert 0.0 < named["on_hand/dc_central/sku01"] < 5.0
    assert named["episode_progress"] == 0.0


def test_money_features_and_headroom_read_the_bills_open_now():
    """The observation's bills due soon and cash headroom, which the simulator remembers for the
    next decision point, equal a fresh sum over the open bills and held orders at every step
    and after a reset (retail: cash rule, orders held for approval, bills due within 4 weeks)."""
    env = AllocationEnv("retail", check_invariants=True)
    sim = env.simulator
    money = env.observations.money_scale
    window = sim.payment_window + 1
    column = {name: i for i, name in enumerate(env.feature_names)}
    rng = np.random.default_rng(3)

    def fresh_bills_and_headroom() -> tuple[float, float]:
        bills = float(sum(amount for due, amount in sim.payables.items() if due < sim.period + window))
        held = sum(sim._pending_value.values())
        scenario = sim.network.scenario
        buffer, credit = scenario.finance.treasury_buffer, scenario.finance.credit_line
        return bills, sim.cash + credit - bills - held - buffer

    def scaled(value: float) -> np.float32:
        return np.float32(np.clip(value / money, -10.0, 10.0))

    held_orders = 0
    for seed in (0, 1):
        obs, _ = env.reset(seed=seed)
        assert sim.purchase_headroom() == fresh_bills_and_headroom()[1]
        truncated = False
        while not truncated:
            obs, _, _, truncated, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
            bills, headroom = fresh_bills_and_headroom()
            assert obs[column["payables_due_soon"]] == scaled(bills)
            assert obs[column["cash_headroom_over_buffer"]] == scaled(headroom)
            assert sim.purchase_headroom() == headroom
            held_orders += bool(sim._pending_value)
    assert held_orders  # the held orders' value counted in some periods


def test_feature_observation_is_the_rule_features_and_changes_nothing_else():
    """observation="features" shows the agent the rule table's features; the episode — rewards,
    KPIs, the next state — is the one the full observation's env plays with the same actions."""
    from invalloc.env.features import FeatureSet

    features_env = AllocationEnv("retail", observation="features", **SHORT)
    full_env = AllocationEnv("retail", **SHORT)
    feature_set = FeatureSet(full_env.network)
    assert features_env.feature_names == feature_set.names
    assert features_env.observation_space.shape == (feature_set.size,)
    gymnasium_check_env(features_env)
    sb3_check_env(AllocationEnv("retail", observation="features", periods=4), warn=False)
    obs, _ = features_env.reset(seed=5)
    full_env.reset(seed=5)
    actions = np.random.default_rng(1)
    done, seen = False, []
    while not done:
        # Computed independently, on the other env's simulator.
        np.testing.assert_array_equal(obs, feature_set.compute(full_env.simulator).astype(np.float32))
        seen.append(obs)
        action = actions.uniform(-1, 1, features_env.action_space.shape)
        obs, reward, _, done, info = features_env.step(action)
        _, full_reward, _, _, full_info = full_env.step(action)
        assert reward == full_reward
        np.testing.assert_array_equal(info["kpis"]["fill_rate_by_tier"], full_info["kpis"]["fill_rate_by_tier"])
    # The features move with the state (a constant observation would pass the checks above).
    assert (np.ptp(np.stack(seen), axis=0) > 0).sum() >= 10
    with pytest.raises(ValueError, match="observation='pixels'"):
        AllocationEnv("tiny", observation="pixels")


def test_config_overrides():
    env = gym.make("invalloc/Allocation-v0", scenario="tiny", config_overrides={"episode": {"horizon": 5}})
    env.reset(seed=0)
    steps = 0
    done = False
    while not done:
        *_, terminated, truncated, _ = env.step(env.action_space.sample())
        done = terminated or truncated
        steps += 1
    assert steps == 5


def make_tiny():
    return AllocationEnv("tiny", **SHORT)


def test_gymnasium_vector_envs_agree():
    sync = gym.vector.SyncVectorEnv([make_tiny, make_tiny])
    asynchronous = gym.vector.AsyncVectorEnv([make_tiny, make_tiny])
    try:
        obs_sync, _ = sync.reset(seed=[1, 2])
        obs_async, _ = asynchronous.reset(seed=[1, 2])
        np.testing.assert_array_equal(obs_sync, obs_async)
        actions = np.zeros((2, *make_tiny().action_space.shape), dtype=np.float32)
        for _ in range(3):
            a = sync.step(actions)
            b = asynchronous.step(actions)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
    finally:
        sync.close()
        asynchronous.close()


def test_sb3_vector_envs_run():
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    for vec_cls in (DummyVecEnv, SubprocVecEnv):
        vec = vec_cls([make_tiny, make_tiny])
        try:
            vec.seed(3)
            obs = vec.reset()
            assert obs.shape == (2, *make_tiny().observation_space.shape)
            for _ in range(14):  # past one episode: auto-reset works
                obs, rewards, dones, infos = vec.step(np.zeros((2, *make_tiny().action_space.shape)))
            assert np.isfinite(rewards).all()
        finally:
            vec.close()


@pytest.mark.parametrize(
    "imports,env_id",
    [
        ("import gymnasium as gym\nimport invalloc", "invalloc/Allocation-v0"),
        ("import invalloc\nimport gymnasium as gym", "invalloc/Allocation-v0"),
        ("import invalloc\nfrom gymnasium import spaces\nimport gymnasium as gym", "invalloc/Allocation-v0"),
        ("import gymnasium as gym", "invalloc:invalloc/Allocation-v0"),
    ],
    ids=["gymnasium first", "invalloc first", "gymnasium submodule first", "module prefix"],
)
def test_environment_is_registered_whatever_the_import_order(imports, env_id):
    """`import invalloc` does not import gymnasium, yet the env id works in either order."""
    import subprocess
    import sys

    code = (
        f"import sys\n{imports}\n"
        "assert 'invalloc.env.allocation_env' not in sys.modules  # loads only when an env is made\n"
        f"env = gym.make({env_id!r}, scenario='tiny', periods=3)\n"
        "env.reset(seed=0)\n"
        "info = env.step(env.action_space.sample())[4]\n"
        "print(type(env.unwrapped).__name__, info['period'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "AllocationEnv 0"  # the first period was stepped


def test_importing_invalloc_imports_no_gymnasium():
    import subprocess
    import sys

    code = "import sys, invalloc\nprint('gymnasium' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False False"


def test_the_compact_mapping_is_its_documented_formula_whatever_the_action_s_dtype():
    """The compiled compact mapping orders each DC × SKU up to demand through the DC × (lead
    time + 1.5) × 4^((a_sku + a_dc)/2) and splits each DC's stock over its channels by need ×
    exp(2·a_channel), as the planning view computes them in numpy; a float32 action out of
    [-1, 1] (as a vector env passes it) maps exactly as the same action clipped, in float64."""
    from invalloc.env.actions import BASE_COVER, RANGE

    env = AllocationEnv("retail")
    env.reset(seed=3)
    mapper, sim = env.actions, env.simulator
    view = mapper.view
    rng = np.random.default_rng(0)
    for _ in range(8):
        action = rng.uniform(-1.5, 1.5, env.action_space.shape).astype(np.float32)
        clipped = np.clip(action.astype(np.float64), -1.0, 1.0)
        requests = mapper.clipped_compact_requests(action)
        assert np.array_equal(requests, mapper.requests(clipped))  # the two paths: the same bits
        padded = np.append(clipped, 0.0)  # a missing dimension reads 0
        exponent = (padded[mapper._sku_dimension] + padded[mapper._location_dimension]) / 2
        expected = np.zeros(env.network.n_decisions)
        target = view.demand_through(sim) * (view.route.lead_time + BASE_COVER) * RANGE**exponent
        view.order_up_to(sim, expected, target)
        weight = np.ones(len(env.network.channels))
        weight[mapper.channels_decided] = np.exp(2.0 * clipped[mapper._weight_start :])
        view.allocate_by_weight(sim, expected, view.channel_need(sim) * weight[view.allocation_channels][:, None])
        np.testing.assert_allclose(requests, expected, rtol=1e-12, atol=1e-9)
        assert requests[view.routed_decisions].sum() > 0  # something was ordered
        env.step(action)
    bad = np.zeros(mapper.size)
    bad[-1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        mapper.requests(bad)
    assert mapper.clipped_compact_requests(bad) is None  # the env then checks it and names the entry
