"""Demand: each distribution has the scenario's mean and variance; traces replay exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import network_of
from invalloc.config.generate import generate_scenario
from invalloc.config.loader import parse_scenario
from invalloc.sim.demand import DemandModel, DemandTraceError, load_demand_trace
from invalloc.sim.network import compile_network


def test_channel_demand_has_the_streams_mean_and_variance():
    network = compile_network(parse_scenario(generate_scenario(12, 2, 3, seed=3), "generated", Path.cwd()))
    model = DemandModel(network, 20)
    rng = np.random.default_rng(0)
    draws = np.stack([model.sample(rng) for _ in range(600)])  # (N, H, T, S)
    channel = np.zeros((*draws.shape[:2], len(network.channels), network.n_skus))
    for tier, c in enumerate(network.tier_channel):
        channel[:, :, c] += draws[:, :, tier]
    seen = set()
    for stream, c, columns, mean, std in model.streams:
        big = mean > 5
        if not big.any():
            continue
        observed_mean = channel[:, :, c][:, :, columns].mean(axis=0)[big]
        observed_var = channel[:, :, c][:, :, columns].var(axis=0)[big]
        variance = mean if stream.distribution == "poisson" else std**2
        assert np.median(observed_mean / mean[big]) == pytest.approx(1.0, abs=0.02)
        assert np.median(observed_var / variance[big]) == pytest.approx(1.0, abs=0.08)
        seen.add(stream.distribution)
    assert seen == {"poisson", "normal", "negative_binomial"}


def test_tier_shares_are_respected():
    network = network_of("retail")
    model = DemandModel(network, 52)
    draws = np.stack([model.sample(np.random.default_rng(s)) for s in range(40)])
    per_tier = draws.sum(axis=(0, 1, 3))
    for c in range(len(network.channels)):
        members = np.flatnonzero(network.tier_channel == c)
        shares = per_tier[members] / per_tier[members].sum()
        np.testing.assert_allclose(shares, network.tier_share[members], atol=0.01)


def test_trace_is_replayed_exactly_and_bad_traces_are_named(tmp_path):
    network = network_of("tiny")
    rows = [
        (p, ch, sku, p + i)
        for p in range(25)
        for i, (ch, sku) in enumerate((c, s) for c in network.channels for s in network.skus)
    ]
    path = tmp_path / "trace.csv"
    pd.DataFrame(rows, columns=["period", "channel", "sku", "quantity"]).to_csv(path, index=False)
    demand = load_demand_trace(network, path, 20)
    assert demand[7, 0, 1] == 7 + 1
    pd.DataFrame(rows[:5], columns=["period", "channel", "sku", "quantity"]).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DemandTraceError, match="short.csv"):
        load_demand_trace(network, tmp_path / "short.csv", 20)
    pd.DataFrame({"period": [0], "channel": ["nowhere"], "sku": [network.skus[0]], "quantity": [1]}).to_csv(
        tmp_path / "bad.csv", index=False
    )
    with pytest.raises(DemandTraceError, match="nowhere"):
        load_demand_trace(network, tmp_path / "bad.csv", 1)
