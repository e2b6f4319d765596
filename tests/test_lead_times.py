"""Lead times drawn per shipment: the compiled draw takes the same numbers as the samplers'."""

from __future__ import annotations

import numpy as np

from invalloc.config.loader import load_scenario
from invalloc.sim.kernels import state_words
from invalloc.sim.kernels.lead_times import draw_lead_times, lead_time_tables
from invalloc.sim.network import LeadTimeSampler, compile_network
from invalloc.sim.simulator import Simulator

#: Fixed, uniform and discrete lanes (one whose probabilities sum to 1 only up to rounding).
SAMPLERS = [
    LeadTimeSampler(np.array([2]), np.array([1.0])),
    LeadTimeSampler(np.arange(1, 4), np.full(3, 1 / 3)),
    LeadTimeSampler(np.array([0]), np.array([1.0])),
    LeadTimeSampler(np.array([1, 4, 9]), np.array([0.2, 0.5, 0.3])),
    LeadTimeSampler(np.arange(10), np.full(10, 0.1)),
]


def test_compiled_draw_takes_the_samplers_numbers_in_lane_order():
    """Each period's lead times equal ``sampler.draw`` lane by lane on a twin stream, and the
    stream continues where the samplers' would (the next draw is the same number)."""
    rng, twin = np.random.default_rng([7, 1]), np.random.default_rng([7, 1])
    tables = lead_time_tables(SAMPLERS)
    seen = set()
    leads = np.full(len(SAMPLERS), -1, dtype=np.int64)
    for _ in range(500):
        draw_lead_times(state_words(rng), *tables, leads)
        expected = [sampler.draw(twin) for sampler in SAMPLERS]
        assert leads.dtype == np.int64 and leads.tolist() == expected
        seen.update(zip(range(len(SAMPLERS)), expected, strict=True))
    assert rng.random() == twin.random()
    assert {lead for lane, lead in seen if lane == 3} == {1, 4, 9}  # every value of a lane is drawn
    assert {lead for lane, lead in seen if lane == 4} == set(range(10))


def test_simulator_draws_lead_times_compiled_or_with_numpy_alike():
    """The simulator's lead times (retail: one supplier with a uniform 1–3 week lead time) are
    the samplers' draws from the supply stream, with a PCG64 stream (compiled) and with another
    bit generator (numpy draws)."""
    simulator = Simulator(compile_network(load_scenario("retail")), check_invariants=False)
    samplers = simulator.network.purchase_lead_time
    assert any(not sampler.is_fixed for sampler in samplers)
    for stream in (np.random.PCG64, np.random.MT19937):
        simulator.reset(seed=3)
        simulator._supply_rng = np.random.Generator(stream(11))
        twin = np.random.Generator(stream(11))
        for _ in range(100):
            assert simulator._draw_leads(samplers).tolist() == [sampler.draw(twin) for sampler in samplers]
