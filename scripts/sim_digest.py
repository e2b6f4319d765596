"""Digests of simulated episodes: a check that a speed-up changed no result, bit for bit.

Every period report (reward, profit, costs, demand, service, the feasible decision, cash,
stock) and every request a policy made is hashed, per case, over the shipped scenarios
(tiny, retail, newsvendor, base_stock, OR-Gym v0/v1) and generated networks (200 and
2,000 SKUs, and small ones with other features switched on), for several baselines and
seeds, with invariant checks and audit on and off.

Usage (from the repository root)::

    .venv/bin/python scripts/sim_digest.py --write digests.json   # record today's digests
    .venv/bin/python scripts/sim_digest.py --check digests.json   # compare; exit 1 on a change
    .venv/bin/python scripts/sim_digest.py --quick ...            # fewer cases (no 2,000 SKUs)
    .venv/bin/python scripts/sim_digest.py --only tiny ...        # one case (repeatable)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from invalloc.baselines import make_policy  # noqa: E402
from invalloc.config.generate import generate_scenario  # noqa: E402
from invalloc.config.loader import SCENARIO_DIR, load_scenario, parse_scenario  # noqa: E402
from invalloc.sim.network import Network, compile_network  # noqa: E402
from invalloc.sim.simulator import Simulator  # noqa: E402

#: Baselines run on every network: (label, policy name, params).
POLICIES = [
    ("base_stock", "base_stock", None),
    ("base_stock_uncapped", "base_stock", {"capped": "false"}),
    ("base_stock_levels", "base_stock", {"levels": "40", "stop": "auto"}),
    ("s_S", "s_S", None),
    ("proportional", "proportional", None),
    ("priority", "priority", None),
    ("fixed_split", "fixed_split", None),
    ("base_stock_prop", "base_stock", {"allocation": "proportional", "cover": "2.5"}),
]


def _generated(n_skus: int, seed: int = 0, **options) -> Network:
    data = generate_scenario(n_skus, 3, 3, seed=seed, **options)
    return compile_network(parse_scenario(data, "generated", Path.cwd()))


def networks(quick: bool, only: list[str] | None = None) -> Iterator[tuple[str, Network, list[int]]]:
    """(name, network, seeds) of every case (``only``: of the cases named)."""
    cases = [
        (name, lambda name=name: compile_network(load_scenario(name)), [0, 1, 7])
        for name in ("tiny", "retail", "newsvendor", "base_stock", "orgym_invmanagement_v0", "orgym_invmanagement_v1")
        if (SCENARIO_DIR / f"{name}.yaml").is_file()
    ]
    cases += [
        ("gen200", lambda: _generated(200), [0, 3]),
        ("gen20_mixed_wa", lambda: _generated(20, 1, integer_units="mixed", cost_method="weighted_average"), [0, 1]),
        (
            "gen20_delay_backorder",
            lambda: _generated(20, 2, approval_action="delay", backorder_replenishment=True),
            [0, 1],
        ),
        ("gen20_fractional_lost", lambda: _generated(20, 3, integer_units=False, unmet_demand="lost_sales"), [0, 1]),
        ("gen30_shortfall_uniform", lambda: _generated(30, 4, shortfall_penalty=True, lead_time_kind="uniform"), [0]),
    ]
    if not quick:
        cases.append(("gen2000", lambda: _generated(2000), [0]))
    for name, build, seeds in cases:
        if only is None or name in only:
            yield name, build(), seeds


def _update(digest, value) -> None:
    if isinstance(value, np.ndarray):
        digest.update(str(value.dtype).encode() + str(value.shape).encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, float | int | bool | np.floating | np.integer | np.bool_):
        digest.update(np.float64(value).tobytes() if isinstance(value, float | np.floating) else repr(value).encode())
    elif isinstance(value, dict):
        for key in value:
            digest.update(key.encode())
            _update(digest, value[key])
    elif value is None:
        digest.update(b"None")
    else:
        digest.update(repr(value).encode())


def episode_digest(simulator: Simulator, policy, seed: int, anchored: bool = False) -> str:
    """Hex digest of one episode's requests and period reports."""
    digest = hashlib.sha256()
    simulator.reset(seed=seed)
    policy.reset(simulator.network, seed=seed)
    rng = np.random.default_rng(seed + 99)  # corrections of an anchored policy (its own stream)
    n = simulator.network
    while not simulator.done:
        if anchored:
            scale = rng.uniform(0.5, 1.5, size=(len(n.locations), n.n_skus))
            weight = rng.uniform(0.5, 1.5, size=len(n.channels))
            requests = policy.act(simulator, target_scale=scale, channel_weight=weight)
        else:
            requests = policy.act(simulator)
        _update(digest, np.asarray(requests, dtype=float))
        report = simulator.step(requests)
        for field in (
            "period",
            "reward",
            "undiscounted_reward",
            "profit",
            "revenue",
            "costs",
            "demand",
            "served_new",
            "served",
            "short",
            "cash",
            "inventory_value",
            "on_hand",
            "written_down",
            "expired_units",
            "invariants_ok",
        ):
            _update(digest, getattr(report, field))
        decision = report.decision
        for field in (
            "orders",
            "delayed_orders",
            "transfers",
            "allocations",
            "purchase_value",
            "requested",
            "executed",
            "log",
            "shortfall",
            "shortfall_penalty",
        ):
            _update(digest, getattr(decision, field))
    if simulator.audit_log is not None:
        for row in simulator.audit_log.rows:
            _update(digest, repr(row))
    _update(digest, simulator.min_cash)
    return digest.hexdigest()


def digests(quick: bool, only: list[str] | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, network, seeds in networks(quick, only):
        big = network.n_skus >= 1000
        modes = [(False, False)] if big else [(False, False), (True, False), (True, True)]
        for check, audit in modes:
            simulator = Simulator(network, check_invariants=check, audit=audit)
            policies = POLICIES[:2] if big else POLICIES
            if name.startswith("orgym") or name == "tiny":
                policies = [*policies, ("fixed20", "fixed", {"quantity": "20"})]
            for label, policy_name, params in policies:
                policy = make_policy(policy_name, params)
                for seed in seeds:
                    key = f"{name}/{label}/seed{seed}/inv{int(check)}/audit{int(audit)}"
                    out[key] = episode_digest(simulator, policy, seed)
            if not big and not check:
                policy = make_policy("base_stock", None)
                out[f"{name}/base_stock_anchored/seed0"] = episode_digest(simulator, policy, 0, anchored=True)
        print(f"{name}: done", file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, help="write the digests to this JSON file")
    group.add_argument("--check", type=Path, help="compare with the digests in this JSON file")
    parser.add_argument("--quick", action="store_true", help="leave out the 2,000-SKU network")
    parser.add_argument("--only", action="append", metavar="CASE", help="only this network (tiny, retail, gen200, …)")
    args = parser.parse_args(argv)
    result = digests(args.quick, args.only)
    if args.write:
        args.write.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        print(f"{len(result)} digests written to {args.write}")
        return 0
    expected = json.loads(args.check.read_text())
    changed = [key for key in result if key in expected and expected[key] != result[key]]
    missing = [key for key in result if key not in expected]
    for key in changed:
        print(f"CHANGED {key}")
    for key in missing:
        print(f"not recorded: {key}")
    compared = len(result) - len(missing)
    print(f"{compared} digests compared, {len(changed)} changed")
    return 1 if changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
