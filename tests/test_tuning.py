"""Derivative-free tuning of rule-based policies: improvement, determinism, files, regression."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import yaml

from invalloc.baselines import make_policy
from invalloc.baselines.tuning import (
    Dimension,
    SearchSpace,
    default_search_space,
    evaluate,
    format_seeds,
    load_params,
    parse_seeds,
    save_params,
    tune,
)
from invalloc.sim.policy import PolicyError

V1 = "orgym_invmanagement_v1"
# Found by `invalloc tune --scenario orgym_invmanagement_v1 --policy base_stock --seeds 0-49`
# (default budget and search space, seed 0): training mean 519.6 on seeds 0–49; 516.3
# (95% CI 514.5–518.1) on held-out seeds 10000–10999.
V1_TUNED = {"levels": "91,211,425", "stop": "26,20,8"}
V1_TUNED_LEVELS = V1_TUNED["levels"]
# A poor start for the OR-Gym mirror: far too little stock at every stage.
POOR_LEVELS = [(0, 160, 1, 20), (0, 360, 1, 40), (0, 760, 1, 60)]


def poor_start_space() -> SearchSpace:
    return SearchSpace(
        tuple(
            Dimension(f"levels[{i}]", "levels", low, high, step, start=start)
            for i, (low, high, step, start) in enumerate(POOR_LEVELS)
        )
    )


@pytest.fixture(scope="module")
def small_run():
    return tune(V1, "base_stock", range(10), budget=40, search_space=poor_start_space(), progress=False, seed=3)


def test_tuning_improves_on_a_poor_start(small_run):
    start = small_run.history[0]
    assert start.phase == "start" and start.params == {"levels": "20,40,60"}
    assert small_run.mean_reward > start.mean_reward + 100
    assert small_run.settings["evaluations"] <= 40
    # The improvement holds on seeds the search never saw (paired: same demand for both).
    held_out = range(500, 530)
    tuned = evaluate(V1, "base_stock", small_run.params, held_out)
    poor = evaluate(V1, "base_stock", start.params, held_out)
    assert (tuned - poor).mean() > 100


def test_result_holds_best_params_history_and_settings(small_run):
    best = max(small_run.history, key=lambda c: c.mean_reward)
    assert small_run.params == best.params
    assert small_run.mean_reward == pytest.approx(best.mean_reward)
    assert small_run.rewards.shape == (10,)
    assert small_run.mean_reward == pytest.approx(small_run.rewards.mean())
    assert len({tuple(sorted(c.params.items())) for c in small_run.history}) == len(small_run.history)
    assert {c.phase for c in small_run.history} <= {"start", "explore", "local", "restart"}
    assert small_run.settings["budget"] == 40 and small_run.settings["seed"] == 3
    assert small_run.seeds == list(range(10))
    make_policy("base_stock", small_run.params)  # the --param strings make_policy accepts


def test_same_seed_same_result(small_run):
    again = tune(V1, "base_stock", range(10), budget=40, search_space=poor_start_space(), progress=False, seed=3)
    assert again.params == small_run.params
    assert [(c.params, c.mean_reward) for c in again.history] == [(c.params, c.mean_reward) for c in small_run.history]


def test_s_S_keeps_S_at_or_above_s_on_tiny():
    # tiny has two SKUs: s and S are covers in periods (one pair suits every SKU).
    result = tune("tiny", "s_S", range(4), budget=14, progress=False)
    for candidate in result.history:
        assert float(candidate.params["S_cover"]) >= float(candidate.params["s_cover"])
    assert result.mean_reward >= result.history[0].mean_reward


def test_default_search_spaces():
    v1 = default_search_space(V1, "base_stock")
    assert [d.name for d in v1.dimensions] == [
        "levels[stage0]",
        "levels[stage1]",
        "levels[stage2]",
        "stop[stage0]",
        "stop[stage1]",
        "stop[stage2]",
    ]
    # Bounds: 2 × demand 20 × (echelon lead time + 1) with echelon leads 3, 8, 18; stops in 0–29.
    assert [d.high for d in v1.dimensions] == [160, 360, 760, 29, 29, 29]
    # Stops start at the last period whose order can reach a customer: 29 − 3, − 8, − 18.
    assert v1.params(v1.start()) == {"levels": "89,193,399", "stop": "26,21,11"}
    # Many SKUs: a cover per DC (not per-DC levels shared by every SKU) and an offset from stop=auto.
    retail = default_search_space("retail", "priority")
    assert [d.name for d in retail.dimensions] == ["cover[dc_central]", "cover[dc_north]", "cover[dc_south]", "stop"]
    assert retail.params(retail.start()) == {"cover": "2,2,2", "stop": "auto+0"}
    low = list(retail.start())
    low[-1] = 0
    assert retail.params(tuple(low))["stop"] == "auto-12"
    make_policy("priority", retail.params(tuple(low)))
    split = default_search_space("tiny", "fixed_split")
    assert [d.key for d in split.dimensions] == ["cover", "stop", "split", "split"]
    s_s = default_search_space("retail", "s_S")
    assert [d.key for d in s_s.dimensions] == ["s_cover", "S_cover", "stop"]
    with pytest.raises(PolicyError, match="no default search space"):
        default_search_space("tiny", "fixed")


def test_search_space_shorthand():
    space = SearchSpace.from_spec({"levels": [(0, 100), (0, 200, 5)], "allocation": "priority", "cover": 2})
    assert [d.name for d in space.dimensions] == ["levels[0]", "levels[1]"]
    assert space.dimensions[1].step == 5
    assert space.params((10, 3)) == {"allocation": "priority", "cover": "2", "levels": "10,15"}
    with pytest.raises(PolicyError, match="low ≤ high"):
        SearchSpace.from_spec({"cover": (3, 1)})


def test_params_round_trip(small_run, tmp_path):
    path = save_params(small_run, tmp_path / "tuned" / "v1.yaml")
    assert load_params(path) == ("base_stock", small_run.params)
    assert load_params(path, policy="base_stock", scenario=V1) == ("base_stock", small_run.params)
    document = yaml.safe_load(path.read_text())
    assert list(document) == ["policy", "scenario", "params", "training", "tuned_at", "invalloc_version"]
    assert document["scenario"] == V1
    assert document["training"]["seeds"] == "0-9"
    assert document["training"]["mean_reward"] == pytest.approx(small_run.mean_reward)
    assert dt.datetime.fromisoformat(document["tuned_at"]).tzinfo is not None
    assert sorted(p.name for p in path.parent.iterdir()) == ["v1.yaml"]  # no temporary file left


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "params file not found"),
        ("policy: [base_stock\n", "not valid YAML (line"),
        ("- just\n- a list\n", "expected a mapping"),
        ("policy: base_stock\nscenario: tiny\n", "missing key(s) params"),
        ("policy: s_S\nscenario: tiny\nparams: {s: '1', S: '5'}\n", "tuned for policy 's_S', not 'base_stock'"),
        ("policy: base_stock\nscenario: tiny\nparams: {depth: 3}\n", "--param depth: not a parameter"),
        ("policy: base_stock\nscenario: tiny\nparams: {levels: [1, 2]}\n", "params.levels must be"),
    ],
)
def test_load_params_errors_are_one_line_and_name_the_file(tmp_path, text, expected):
    path = tmp_path / "params.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_params(path, policy="base_stock")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_load_params_scenario_mismatch(small_run, tmp_path):
    path = save_params(small_run, tmp_path / "v1.yaml")
    with pytest.raises(PolicyError, match="tuned on scenario 'orgym_invmanagement_v1', not 'tiny'"):
        load_params(path, scenario="tiny")


def test_seeds_text():
    assert parse_seeds("0-3,7, 9-10") == [0, 1, 2, 3, 7, 9, 10]
    assert format_seeds(parse_seeds("0-49,100")) == "0-49,100"
    for bad in ("", "a-b", "5-2"):
        with pytest.raises(PolicyError, match="--seeds"):
            parse_seeds(bad)


def test_two_workers_give_the_same_rewards():
    seeds = range(20, 30)
    alone = evaluate(V1, "base_stock", {"levels": V1_TUNED_LEVELS}, seeds)
    pooled = evaluate(V1, "base_stock", {"levels": V1_TUNED_LEVELS}, seeds, workers=2)
    np.testing.assert_array_equal(alone, pooled)


def test_v1_tuned_base_stock_scores_at_least_445_on_held_out_seeds():
    """Regression: the echelon base-stock policy tune() found scores ≥ 445 on held-out seeds.

    Fixed levels alone top out near 396 on this 30-period mirror (the search, scipy's
    differential evolution and an independent transcription of OR-Gym agree); the tuned
    last ordering periods (``stop``) avoid buying what cannot be sold before the horizon.
    """
    rewards = evaluate(V1, "base_stock", V1_TUNED, range(10_000, 10_200))
    half_width = 1.96 * rewards.std(ddof=1) / np.sqrt(len(rewards))
    assert rewards.mean() - half_width > 445
    levels_only = evaluate(V1, "base_stock", {"levels": V1_TUNED_LEVELS}, range(10_000, 10_200))
    assert levels_only.mean() > 378.5  # the published MIP-optimised base stock


def test_per_dc_covers_are_tuned_in_two_stages():
    """One cover shared by every DC first, then a cover per DC starting from the best shared one."""
    result = tune("retail", "base_stock", range(2), budget=8, progress=False, workers=1)
    stages = [len(c.params["cover"].split(",")) for c in result.history]
    assert stages == sorted(stages) and set(stages) == {1, 3}  # one shared cover, then one per DC
    first, second = result.history[: stages.count(1)], result.history[stages.count(1) :]
    best_shared = max(first, key=lambda c: c.mean_reward)
    assert second[0].params["cover"] == ",".join([best_shared.params["cover"]] * 3)  # starts from it
    assert second[0].params["stop"] == best_shared.params["stop"]
    assert result.settings["budget"] == 8 and result.settings["evaluations"] == len(result.history)
    assert result.mean_reward == max(c.mean_reward for c in result.history)
