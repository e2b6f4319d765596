"""Rule-based baselines request only what can execute, count held orders, source by landed cost,
and are distinct rules; the tuned parameters shipped in invalloc/tuned load and beat the naive rule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from conftest import network_of
from invalloc.baselines import make_policy
from invalloc.baselines.tuning import load_params
from invalloc.sim.planning import PlanningView
from invalloc.sim.policy import PolicyError
from invalloc.sim.simulator import Simulator, run_episode

TUNED = Path(__file__).resolve().parent.parent / "src" / "invalloc" / "tuned"
#: The naive rule README's retail figures start from: tuned cover=2.4, uncapped, proportional allocation.
LEGACY = {"cover": "2.4", "capped": "false", "allocation": "proportional"}


def decision_index(network, name: str) -> int:
    return network.decision_names.index(name)


def test_capped_orgym_orders_stay_within_capacity_and_upstream_stock():
    """High echelon levels ask for more than can ship: the capped rule asks for exactly what can."""
    network = network_of("orgym_invmanagement_v1")
    simulator = Simulator(network)
    policy = make_policy("base_stock", {"levels": "400,900,2000"})
    capacity = np.array([100.0, 90.0, 80.0])
    simulator.reset(seed=5)
    policy.reset(network, seed=5)
    capped_somewhere = False
    while not simulator.done:
        requests = policy.act(simulator)
        upstream = np.append(simulator.on_hand[[1, 2]], np.inf)  # stage1, stage2 on hand; stage3 unlimited
        assert np.all(requests <= capacity) and np.all(requests <= upstream)
        capped_somewhere |= bool(np.any(requests == np.minimum(capacity, upstream)))
        report = simulator.step(requests)
        assert report.decision.intervention_count == 0
        assert report.decision.shortfall_penalty == 0.0
        np.testing.assert_array_equal(report.decision.executed, report.decision.requested)
    assert capped_somewhere
    # The naive form asks for the uncapped need; the layer cuts it and charges the lane's penalty.
    naive = run_episode(simulator, make_policy("base_stock", {"levels": "400,900,2000", "capped": "false"}), seed=5)
    assert sum(r.decision.shortfall_penalty for r in naive) > 0


def test_orgym_echelon_base_stock_reproduces_orgyms_own_rule():
    """OR-Gym's rule with levels 89, 208, 0 scores 450.6 (s.d. 21.7) over 1,000 episodes; on 100
    episodes (s.e. ≈ 2.2) the mean must be within 3 + 3 standard errors of it."""
    network = network_of("orgym_invmanagement_v1")
    simulator = Simulator(network, check_invariants=False)
    policy = make_policy("base_stock", {"levels": "89,208,0"})
    totals = [math.fsum(r.reward for r in run_episode(simulator, policy, seed=seed)) for seed in range(100)]
    assert abs(np.mean(totals) - 450.6) < 3 + 3 * 21.7 / math.sqrt(100)
    naive = make_policy("base_stock", {"levels": "89,208,0", "capped": "false"})
    naive_totals = [math.fsum(r.reward for r in run_episode(simulator, naive, seed=seed)) for seed in range(20)]
    assert np.mean(naive_totals) < np.mean(totals[:20]) - 50  # the unshipped part's penalty


def test_retail_capped_baselines_leave_the_feasibility_layer_nothing_to_change():
    network = network_of("retail")
    simulator = Simulator(network)
    for name, params in [("base_stock", {"cover": "4"}), ("priority", {}), ("s_S", {})]:
        reports = run_episode(simulator, make_policy(name, params), seed=1)
        changed = [np.count_nonzero(r.decision.requested != r.decision.executed) for r in reports]
        assert sum(changed) == 0, name
        assert all(r.invariants_ok for r in reports)
    naive = run_episode(simulator, make_policy("base_stock", LEGACY), seed=1)
    assert sum(np.count_nonzero(r.decision.requested != r.decision.executed) for r in naive) > 1000


def test_held_orders_count_in_the_position():
    """An order held for approval is in the position next period, so it is not ordered again."""
    network = network_of("retail")
    sku21 = decision_index(network, "order/acme/dc_central/sku21")
    requests = {}
    for held in (0, 200):  # 200 × 80 = 16,000 > the approval limit of 15,000: held one week
        for capped in ("true", "false"):
            simulator = Simulator(network)
            simulator.reset(seed=0)
            first = np.zeros(network.n_decisions)
            first[sku21] = held
            report = simulator.step(first)
            assert report.decision.delayed_orders.sum() == held
            policy = make_policy("base_stock", {"cover": "2", "capped": capped})
            policy.reset(network, seed=0)
            requests[held, capped] = policy.act(simulator)[sku21]
            view = PlanningView(network)
            central = network.locations.index("dc_central")
            committed = view.positions(simulator, committed=True) - view.positions(simulator)
            assert committed[central, network.skus.index("sku21")] == held
    assert requests[0, "true"] > 0 and requests[0, "false"] > 0  # without the held order both rules order
    assert requests[200, "true"] == 0  # the capped rule sees the 200 held units
    assert requests[200, "false"] == requests[0, "false"]  # the naive rule orders the same units again


def test_sourcing_uses_the_cheaper_lane_first_within_its_limits():
    network = network_of("retail")
    simulator = Simulator(network)
    simulator.reset(seed=0)
    view = PlanningView(network)
    central, sku = network.locations.index("dc_central"), network.skus.index

    def source(**units: float) -> np.ndarray:
        need = np.zeros((len(network.locations), network.n_skus))
        for name, q in units.items():
            need[central, sku(name)] = q
        requests = np.zeros(network.n_decisions)
        view.sourcing.request(simulator, need, requests)
        return requests

    def order(requests, supplier, name):
        return requests[decision_index(network, f"order/{supplier}/dc_central/{name}")]

    # bolt is 6% cheaper: it takes the whole need ...
    requests = source(sku07=50)
    assert (order(requests, "bolt", "sku07"), order(requests, "acme", "sku07")) == (50, 0)
    # ... unless the need is below bolt's minimum order quantity of 40 (acme has none) ...
    requests = source(sku07=30)
    assert (order(requests, "bolt", "sku07"), order(requests, "acme", "sku07")) == (0, 30)
    # ... or above its capacity of 300 a week for staples: the rest goes to acme.
    requests = source(sku01=500)
    assert (order(requests, "bolt", "sku01"), order(requests, "acme", "sku01")) == (300, 200)
    # The approval limit (15,000 per order incl. the fixed cost) applies per lane: a large need is
    # bought in a lot just under it on bolt, then on acme, and nothing is held.
    requests = source(sku12=900)  # 900 × 28.2 = 25,380
    bolt = order(requests, "bolt", "sku12")
    assert 15000 - 28.2 < bolt * 28.2 + 120 <= 15000
    assert order(requests, "acme", "sku12") == 900 - bolt
    simulator.step(requests)
    decision = simulator.last_report.decision
    assert decision.intervention_count == 0 and decision.delayed_orders.sum() == 0


def test_each_shipped_baseline_is_a_distinct_rule_on_retail():
    network = network_of("retail")
    simulator = Simulator(network, check_invariants=False)
    outcomes = {}
    for name in ("base_stock", "s_S", "proportional", "priority", "fixed_split"):
        reports = run_episode(simulator, make_policy(name, {}), seed=3)
        outcomes[name] = (
            round(math.fsum(r.reward for r in reports), 6),
            round(sum(float(r.served.sum()) for r in reports), 6),
        )
    assert len(set(outcomes.values())) == len(outcomes), outcomes


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"capped": "maybe"}, "capped=maybe: expected true or false"),
        ({"stop": "auto*2"}, "stop=auto\\*2: expected auto, auto-K or auto\\+K"),
        ({"stop": "auto-1.5"}, "expected auto, auto-K"),
        ({"stop": "-3"}, "stop=-3: -3 is outside 0 … "),
        ({"allocation": "random"}, "choose open, proportional or priority"),
    ],
)
def test_bad_baseline_parameters_are_refused(params, message):
    with pytest.raises(PolicyError, match=message):
        make_policy("base_stock", params)


def test_stop_offset_moves_the_automatic_stop():
    network = network_of("retail")
    auto = make_policy("base_stock", {"stop": "auto"})
    earlier = make_policy("base_stock", {"stop": "auto-3"})
    auto.reset(network)
    earlier.reset(network)
    np.testing.assert_array_equal(earlier.last_order, auto.last_order - 3)


def test_tuned_files_load_for_every_scenario_and_policy():
    files = sorted(TUNED.glob("*/*.yaml"))
    assert {f.parent.name for f in files} >= {"retail", "orgym_invmanagement_v1", "orgym_invmanagement_v0"}
    for path in files:
        policy, params = load_params(path, scenario=path.parent.name)
        assert policy == path.stem and params


def test_tuned_retail_baseline_beats_the_naive_tuned_base_stock():
    """README's acceptance figure on 30 held-out seeds, here on 4 of them: ≥ 50k per episode, paired."""
    network = network_of("retail")
    simulator = Simulator(network, check_invariants=False)
    policy, params = load_params(TUNED / "retail" / "base_stock.yaml", scenario="retail")
    tuned, naive = make_policy(policy, params), make_policy("base_stock", LEGACY)
    differences = []
    for seed in range(3_000_000, 3_000_004):
        a = math.fsum(r.reward for r in run_episode(simulator, tuned, seed=seed))
        b = math.fsum(r.reward for r in run_episode(simulator, naive, seed=seed))
        differences.append(a - b)
    assert min(differences) > 50_000, differences


@pytest.mark.parametrize("path", sorted(TUNED.glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_tuned_files_reproduce_their_recorded_training_score(path):
    """A tuned file is stale when the rule or the simulator changed: re-run scripts/tune_baselines.py."""
    import yaml

    from invalloc.baselines.tuning import parse_seeds

    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    policy, params = load_params(path, scenario=path.parent.name)
    simulator = Simulator(network_of(path.parent.name), check_invariants=False)
    chosen = make_policy(policy, params)
    seeds = parse_seeds(document["training"]["seeds"])
    totals = [math.fsum(r.reward for r in run_episode(simulator, chosen, seed=seed)) for seed in seeds]
    assert np.mean(totals) == pytest.approx(document["training"]["mean_reward"], abs=1e-5)


def test_tuned_names_the_shipped_parameters_and_a_project_file_overrides_them(tmp_path, monkeypatch):
    """``--params tuned`` / ``NAME@tuned``: the project's ./configs/tuned first, then the package's."""
    from invalloc.evaluation.specs import parse_spec

    spec = parse_spec("base_stock@tuned", scenario_name="retail")
    assert dict(spec.params) == load_params(TUNED / "retail" / "base_stock.yaml")[1]
    assert spec.source == "tuned"
    # Overrides after it still apply.
    assert dict(parse_spec("base_stock@tuned:stop=auto", scenario_name="retail").params)["stop"] == "auto"
    # No tuned file for that policy on that scenario: one line saying what is tuned and how to tune it.
    with pytest.raises(PolicyError) as refused:
        parse_spec("priority@tuned", scenario_name="orgym_invmanagement_v1")
    message = str(refused.value)
    assert "\n" not in message and "no tuned parameters for priority on orgym_invmanagement_v1" in message
    assert "base_stock, s_S" in message and "invalloc tune" in message
    # A project's own tuned file wins over the shipped one.
    monkeypatch.chdir(tmp_path)
    own = tmp_path / "configs" / "tuned" / "retail" / "base_stock.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("policy: base_stock\nscenario: retail\nparams:\n  cover: '1.25'\n")
    assert load_params("tuned", policy="base_stock", scenario="retail") == ("base_stock", {"cover": "1.25"})
