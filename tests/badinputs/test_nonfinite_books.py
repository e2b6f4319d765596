"""Books that overflow float64 break an invariant instead of reporting NaN as a valid episode.

Validation refuses 1e308 prices and cash (see the corpus); these tests bypass validation to
show that the simulator's own invariant check catches non-finite money as a second line.
"""

from __future__ import annotations

import numpy as np
import pytest

from invalloc.baselines import make_policy
from invalloc.config.loader import LoadedScenario, ScenarioError, load_scenario, parse_scenario
from invalloc.sim.network import compile_network
from invalloc.sim.simulator import InvariantError, Simulator, run_episode


def _unvalidated(**finance) -> LoadedScenario:
    """`tiny` with 1e308 prices (and ``finance`` fields), built without validation."""
    loaded = load_scenario("tiny")
    scenario = loaded.scenario
    products = [p.model_copy(update={"price": 1e308}) for p in scenario.products]
    update = {"products": products}
    if finance:
        update["finance"] = scenario.finance.model_copy(update=finance)
    return LoadedScenario(scenario.model_copy(update=update), loaded.base_dir, loaded.source)


def test_1e308_scenario_is_refused_at_validation():
    data = load_scenario("tiny").scenario.model_dump(mode="json", by_alias=True)
    data["products"][0]["price"] = 1e308
    data["finance"]["opening_cash"] = 1e308
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "tiny-1e308.yaml", load_scenario("tiny").base_dir)
    assert any(p.startswith("products[0].price: must be less than or equal to") for p in caught.value.problems)
    assert any(p.startswith("finance.opening_cash:") for p in caught.value.problems)


@pytest.mark.parametrize("finance", [{}, {"opening_cash": 1e308}], ids=["price", "price_and_cash"])
def test_overflowing_books_break_an_invariant(finance):
    network = compile_network(_unvalidated(**finance))
    simulator = Simulator(network, check_invariants=True)
    with pytest.raises(InvariantError, match="non-finite"):
        run_episode(simulator, make_policy("base_stock"), seed=0)


def test_without_the_check_the_overflow_is_visible_in_the_reports():
    """What the check guards against: the same run unchecked reports non-finite money."""
    network = compile_network(_unvalidated())
    reports = run_episode(Simulator(network, check_invariants=False), make_policy("base_stock"), seed=0)
    assert not all(np.isfinite(r.profit) for r in reports)
