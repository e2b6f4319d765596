"""The compiled random draws (:mod:`invalloc.sim.kernels.draws`) are numpy's, bit for bit.

Each distribution is drawn twice from generators seeded alike, once compiled and once by
numpy's ``Generator``; the numbers and the generators' final states must be equal, over many
seeds and parameter grids with their edge cases. Then the users: the demand model's compiled
sample against its numpy reference, and the partial deliveries' binomials.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numba import njit

from invalloc.config.generate import generate_scenario
from invalloc.config.loader import load_scenario, parse_scenario
from invalloc.sim.demand import DemandModel
from invalloc.sim.kernels import draws
from invalloc.sim.kernels.demand import draw_negative_binomial_tiers, draw_poisson_of_rates, draw_poisson_tiers
from invalloc.sim.kernels.suppliers import draw_shipped_units
from invalloc.sim.network import compile_network

SEEDS = range(40)


@njit
def _uint64s(state, out):
    pcg = draws.load_state(state)
    for i in range(out.shape[0]):
        out[i], pcg = draws.next_uint64(pcg)
    draws.store_state(state, pcg)


@njit
def _doubles(state, out):
    pcg = draws.load_state(state)
    for i in range(out.shape[0]):
        out[i], pcg = draws.next_double(pcg)
    draws.store_state(state, pcg)


@njit
def _doubles_in_place(state, out):
    for i in range(out.shape[0]):
        out[i] = draws.next_double_in_place(state)


@njit
def _normals(state, loc, scale, out):
    pcg = draws.load_state(state)
    for i in range(out.shape[0]):
        out[i], pcg = draws.normal(pcg, loc[i], scale[i])
    draws.store_state(state, pcg)


@njit
def _exponentials(state, out):
    pcg = draws.load_state(state)
    for i in range(out.shape[0]):
        out[i], pcg = draws.standard_exponential(pcg)
    draws.store_state(state, pcg)


@njit
def _gammas(state, shape, scale, out):
    pcg = draws.load_state(state)
    for i in range(out.shape[0]):
        out[i], pcg = draws.gamma(pcg, shape[i], scale[i])
    draws.store_state(state, pcg)


@njit
def _gammas_from_constants(state, shape, scale, out):
    constants = draws.gamma_constants(shape)
    pcg = draws.load_state(state)
    for i in range(out.shape[0]):
        out[i], pcg = draws.gamma_from_constants(pcg, shape[i], scale[i], constants, i)
    draws.store_state(state, pcg)


def _poissons(state, lam, log_factorial, out):
    """The negative binomial's Poisson draws (each mean's constants computed as it is drawn)."""
    tiers = np.zeros((1, 1, lam.size))
    columns = np.arange(lam.size, dtype=np.int64)
    draw_poisson_of_rates(state, tiers, np.zeros(1, dtype=np.int64), columns, lam[None, :], np.ones(1), log_factorial)
    out[:] = tiers[0, 0]


def _poissons_from_constants(state, lam, log_factorial, out):
    """The demand kernel's Poisson draws (from the means' constants), one tier of one period."""
    tiers = np.zeros((1, 1, lam.size))
    columns = np.arange(lam.size, dtype=np.int64)
    draw_poisson_tiers(state, tiers, np.zeros(1, dtype=np.int64), columns, draws.poisson_constants(lam), log_factorial)
    out[:] = tiers[0, 0]


@njit
def _binomials_from_table(state, n, p, out):
    bounds, steps = draws.binomial_inversion_table(p, draws.INVERSION_TRIALS)
    pcg = draws.load_state(state)
    for i in range(out.shape[0]):
        out[i], pcg = draws.binomial_from_table(pcg, n[i], p, bounds, steps)
    draws.store_state(state, pcg)


def _same(seed: int, compiled, reference) -> None:
    """``compiled(state)`` (the draws) equals ``reference(rng)``, numbers and final state."""
    ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
    state = draws.state_words(ours)
    assert state is not None
    got = compiled(state)
    expected = reference(theirs)
    assert got.dtype == expected.dtype or got.dtype.kind == expected.dtype.kind
    np.testing.assert_array_equal(got, expected)
    assert got.tobytes() == expected.astype(got.dtype).tobytes()  # also -0.0 and NaN bits
    assert ours.bit_generator.state == theirs.bit_generator.state
    assert ours.random() == theirs.random()  # and numpy carries on alike


def _parameters(seed: int, size: int = 3000) -> np.random.Generator:
    return np.random.default_rng(10_000 + seed)


def _filled(fill, dtype, size):
    def compiled(state):
        out = np.empty(size, dtype=dtype)
        fill(state, out)
        return out

    return compiled


@pytest.mark.parametrize("seed", SEEDS)
def test_generator_words_and_uniforms(seed: int) -> None:
    _same(seed, _filled(_uint64s, np.uint64, 5000), lambda rng: rng.integers(0, 2**64, 5000, dtype=np.uint64))
    _same(seed, _filled(_doubles, np.float64, 5000), lambda rng: rng.random(5000))
    _same(seed, _filled(_doubles_in_place, np.float64, 500), lambda rng: rng.random(500))  # BTPE's uniforms


@pytest.mark.parametrize("seed", SEEDS)
def test_normal_and_exponential(seed: int) -> None:
    g = _parameters(seed)
    loc, scale = g.uniform(-50, 50, 20_000), g.uniform(0, 5, 20_000)
    scale[::13] = 0.0
    loc[::17] = 0.0

    def compiled(state):
        out = np.empty(loc.size)
        _normals(state, loc, scale, out)
        return out

    _same(seed, compiled, lambda rng: rng.normal(loc, scale))  # 20,000 draws reach the ziggurat's tail
    _same(seed, _filled(_exponentials, np.float64, 20_000), lambda rng: rng.standard_exponential(20_000))


def _gamma_shapes(g: np.random.Generator, size: int) -> np.ndarray:
    shape = g.uniform(0, 40, size) ** g.uniform(0.1, 1.5, size)
    edges = [0.0, 1e-12, 0.3, 0.999999, 1.0, np.nextafter(1.0, 2.0), 1.5, 1000.0]
    for k, edge in enumerate(edges):
        shape[k :: len(edges) * 3] = edge
    return shape


@pytest.mark.parametrize("seed", SEEDS)
def test_gamma(seed: int) -> None:
    g = _parameters(seed)
    shape = _gamma_shapes(g, 4000)
    scale = g.uniform(0, 4, 4000)
    scale[::19] = 0.0
    for fill in (_gammas, _gammas_from_constants):

        def compiled(state, fill=fill):
            out = np.empty(shape.size)
            fill(state, shape, scale, out)
            return out

        _same(seed, compiled, lambda rng: rng.gamma(shape, scale))


def _poisson_means(g: np.random.Generator, size: int) -> np.ndarray:
    lam = g.uniform(0, 60, size) ** g.uniform(0.2, 1.3, size)
    edges = [0.0, 1e-9, np.nextafter(10.0, 0.0), 10.0, np.nextafter(10.0, 11.0), 2000.0, 1e7, 5e13]
    for k, edge in enumerate(edges):
        lam[k :: len(edges) * 2] = edge
    return lam


@pytest.mark.parametrize("seed", SEEDS)
def test_poisson(seed: int) -> None:
    lam = _poisson_means(_parameters(seed), 4000)
    log_factorial = draws.log_factorials()
    short_table = log_factorial[:3]  # past the table, log k! is computed as numpy does
    for fill in (_poissons, _poissons_from_constants):
        for table in (log_factorial, short_table):

            def compiled(state, fill=fill, table=table):
                out = np.empty(lam.size, dtype=np.int64)
                fill(state, lam, table, out)
                return out

            _same(seed, compiled, lambda rng: rng.poisson(lam))


def test_log_factorials_are_numpys_loggam() -> None:
    table = draws.log_factorials()
    assert table.shape == (draws.LOG_FACTORIALS,)
    assert table[0] == table[1] == 0.0
    assert all(table[k] == draws.loggam(float(k + 1)) for k in range(draws.LOG_FACTORIALS))
    assert abs(table[10] - np.log(3628800.0)) < 1e-12


def _binomial_arguments(g: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    n = g.integers(0, 200, size)
    n[::7] = g.integers(0, 10**6, n[::7].size)  # far beyond n·p = 30: BTPE
    n[::11] = 0
    p = g.uniform(0, 1, size)
    for k, edge in enumerate([0.0, 1.0, 0.5, np.nextafter(0.5, 1.0), 1e-9, 1 - 1e-9]):
        p[k::29] = edge
    return n, p


@pytest.mark.parametrize("seed", SEEDS)
def test_binomial(seed: int) -> None:
    n, p = _binomial_arguments(_parameters(seed), 4000)

    def compiled(state):
        out = np.empty(n.size, dtype=np.int64)
        draws.binomial_fill(state, n, p, out)
        return out

    _same(seed, compiled, lambda rng: rng.binomial(n, p))


@pytest.mark.parametrize("p", [0.0, 1e-3, 0.1, 0.3, 0.5, np.nextafter(0.5, 1.0), 0.7, 0.999, 1.0])
@pytest.mark.parametrize("seed", range(8))
def test_binomial_from_inversion_table(p: float, seed: int) -> None:
    g = _parameters(seed)
    n = g.integers(0, 80, 3000)
    n[::5] = g.integers(0, 3000, n[::5].size)  # past the table, and BTPE
    n[::9] = 0

    def compiled(state):
        out = np.empty(n.size, dtype=np.int64)
        _binomials_from_table(state, n, p, out)
        return out

    _same(seed, compiled, lambda rng: rng.binomial(n, p))


def test_binomial_inversion_table_covers_numpys_inversion() -> None:
    bounds, steps = draws.binomial_inversion_table(0.25, draws.INVERSION_TRIALS)
    assert bounds.shape[0] == 121  # n · 0.25 ≤ 30
    assert steps[4, 0] == np.exp(4 * np.log(0.75))  # P(X = 0) as numpy computes it
    bounds, _ = draws.binomial_inversion_table(1e-6, 50)
    assert bounds.shape[0] == 51  # capped at the trials asked for


def test_state_words_only_for_pcg64() -> None:
    assert draws.state_words(np.random.Generator(np.random.PCG64DXSM(1))) is None
    assert draws.state_words(np.random.Generator(np.random.MT19937(1))) is None
    rng = np.random.default_rng(3)
    assert draws.state_words(rng) is draws.state_words(rng)  # found once per generator


def test_state_words_follow_a_state_set_or_advanced_by_numpy() -> None:
    ours, theirs = np.random.default_rng(1), np.random.default_rng(1)
    state = draws.state_words(ours)  # found before numpy moves the state
    for rng in (ours, theirs):
        rng.bit_generator.state = np.random.default_rng(77).bit_generator.state
        rng.bit_generator.advance(12_345)
        rng.random(3)
    out = np.empty(50)
    _doubles(state, out)
    np.testing.assert_array_equal(out, theirs.random(50))
    assert ours.bit_generator.state == theirs.bit_generator.state


def test_compiled_draws_keep_numpys_buffered_half_word() -> None:
    ours, theirs = np.random.default_rng(9), np.random.default_rng(9)
    for rng in (ours, theirs):
        rng.integers(0, 2**32, dtype=np.uint32)  # leaves a buffered 32-bit half
    assert ours.bit_generator.state["has_uint32"] == 1
    out = np.empty(100)
    _doubles(draws.state_words(ours), out)
    np.testing.assert_array_equal(out, theirs.random(100))
    assert ours.bit_generator.state == theirs.bit_generator.state
    assert ours.integers(0, 2**32, dtype=np.uint32) == theirs.integers(0, 2**32, dtype=np.uint32)


def test_shipped_units_are_numpys_binomials() -> None:
    g = _parameters(4)
    lanes = np.array([0, 2, 3], dtype=np.int64)  # unreliable rows of the orders
    reliability = np.array([0.86, 0.35, 0.999])
    tables = draws.binomial_inversion_tables(reliability)
    assert draws.binomial_inversion_tables(reliability.copy()) is tables  # made once
    for seed in range(20):
        ours, theirs = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 1])
        shipped = g.uniform(0, 9, (4, 50))
        expected = shipped.copy()
        count = 120
        cells = np.sort(g.choice(np.concatenate([lane * 50 + np.arange(50) for lane in lanes]), count, replace=False))
        units = g.integers(1, 400, count)
        units[::10] = g.integers(1, 10**7, units[::10].size)  # past the tables, and BTPE
        probabilities = reliability[np.searchsorted(lanes, cells // 50)]
        draw_shipped_units(draws.state_words(ours), shipped, units, probabilities, cells, count, lanes, *tables)
        expected.ravel()[cells] = theirs.binomial(units, probabilities)
        np.testing.assert_array_equal(shipped, expected)
        assert ours.bit_generator.state == theirs.bit_generator.state


@pytest.mark.parametrize("seed", range(5))
def test_negative_binomial_past_numpys_poisson_limit_stops_where_numpy_does(seed: int) -> None:
    """A gamma rate so large that numpy's Poisson refuses it: the kernel reports it (False),
    with the generator where numpy leaves it (the gammas drawn, no Poisson)."""
    gamma_shape = np.array([[2.5, 1e40, 0.7], [3.0, 4.0, 1e40]])
    gamma_scale = np.full(gamma_shape.shape, 1.5)
    positive = np.ones(gamma_shape.shape, dtype=bool)
    shares = np.array([0.4, 0.6])
    ours, theirs = np.random.default_rng([seed, 2]), np.random.default_rng([seed, 2])
    tiers = np.zeros((2, 2, 3))
    drawn = draw_negative_binomial_tiers(
        draws.state_words(ours),
        tiers,
        np.array([0, 1]),
        np.array([0, 1, 2]),
        positive,
        gamma_shape,
        gamma_scale,
        draws.gamma_constants(gamma_shape.ravel()),
        shares,
        np.empty(gamma_shape.shape),
        draws.log_factorials(),
    )
    rate = theirs.gamma(gamma_shape, gamma_scale)
    with pytest.raises(ValueError, match="lam value too large"):
        theirs.poisson(rate[:, None, :] * shares[None, :, None])
    assert drawn is False
    assert not tiers.any()
    assert ours.bit_generator.state == theirs.bit_generator.state


def _models() -> list[DemandModel]:
    models = []
    for scenario in ("tiny", "retail", "base_stock", "newsvendor"):
        network = compile_network(load_scenario(scenario))
        models.append(DemandModel(network, network.scenario.episode.horizon))
    for n_skus, seed in ((30, 0), (40, 3)):
        data = generate_scenario(n_skus, 3, 3, seed=seed)
        network = compile_network(parse_scenario(data, "generated", Path.cwd()))
        models.append(DemandModel(network, 26))
    models.append(DemandModel(_three_tiers_some_fractional(), 26))
    return models


def _three_tiers_some_fractional():
    """A generated network whose first channel has three tiers and some of whose SKUs are not
    counted in whole units (split pro rata, yet their truncated counts are drawn)."""
    data = generate_scenario(30, 3, 3, seed=5)
    tiers = data["channels"][0]["tiers"]
    bronze = {**tiers[-1], "id": "ch_0_bronze", "priority": len(tiers), "demand_share": 0.2}
    tiers[-1]["demand_share"] = round(tiers[-1]["demand_share"] - 0.2, 6)
    tiers.append(bronze)
    for product in data["products"][::4]:
        product["integer_units"] = False
    network = compile_network(parse_scenario(data, "generated", Path.cwd()))
    assert network.integer_units.any() and not network.integer_units.all()
    assert max(int((network.tier_channel == c).sum()) for c in range(len(network.channels))) == 3
    return network


def test_demand_sample_is_numpys() -> None:
    models = _models()
    kinds = {plan[0] for model in models for plan in model._plans}
    assert kinds == {"poisson", "negative_binomial", "normal"}
    for model in models:
        for seed in range(12):
            ours, theirs = np.random.default_rng([seed, 0]), np.random.default_rng([seed, 0])
            tiers = model.sample(ours)
            assert model._draw_plans is not False  # the compiled draws ran
            expected = model._sample_numpy(theirs)
            assert tiers.tobytes() == expected.tobytes()
            assert ours.bit_generator.state == theirs.bit_generator.state


def test_demand_sample_with_another_bit_generator_is_drawn_by_numpy() -> None:
    model = _models()[-1]
    tiers = model.sample(np.random.Generator(np.random.MT19937(5)))
    assert tiers.tobytes() == model._sample_numpy(np.random.Generator(np.random.MT19937(5))).tobytes()
