"""Tune every shipped rule-based baseline on every shipped scenario it applies to.

Writes ``src/invalloc/tuned/<scenario>/<policy>.yaml`` (shipped with the package; ``--params tuned`` and
``NAME@tuned`` find them; the format ``invalloc simulate --params``
and ``invalloc compare --policy NAME@FILE`` read, see :func:`invalloc.baselines.tuning.save_params`)
and ``src/invalloc/tuned/index.yaml``: per scenario, each policy's mean training reward and the
best one. The committed files were produced by running this script as is::

    PYTHONPATH=src python scripts/tune_baselines.py                 # everything, ~25 min on 2 cores
    PYTHONPATH=src python scripts/tune_baselines.py --scenario retail --policy base_stock

Where a policy has a cover per DC (several SKUs), :func:`~invalloc.baselines.tuning.tune`
searches in two stages: one cover shared by every DC first, then a cover per DC from it.

Which baselines apply: ``base_stock`` and ``s_S`` everywhere; the allocation rules
(``proportional``, ``priority``, ``fixed_split``) only where a DC splits its stock over two
or more channels with allocation decisions — elsewhere they are ``base_stock`` exactly.
Seeds and budgets per scenario are in :data:`PLAN`: training seeds only (held-out seeds
start at 10,000 for ``compare`` and at 3,000,000 in README's retail comparison).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from invalloc.baselines.tuning import format_seeds, save_params, tune
from invalloc.config.loader import load_scenario, shipped_scenarios
from invalloc.sim.network import compile_network
from invalloc.sim.planning import PlanningView

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "invalloc" / "tuned"
POLICIES = ("base_stock", "s_S", "proportional", "priority", "fixed_split")
ALLOCATION_POLICIES = ("proportional", "priority", "fixed_split")

#: Per scenario: training seeds and the most candidates evaluated per policy. Budgets keep each
#: scenario to a few minutes on this project's shared 2-core machine.
PLAN: dict[str, dict[str, object]] = {
    "retail": {"seeds": range(0, 30), "budget": 80},
    "orgym_invmanagement_v1": {"seeds": range(0, 50), "budget": 200},
    "orgym_invmanagement_v0": {"seeds": range(0, 50), "budget": 200},
    "tiny": {"seeds": range(0, 30), "budget": 60},
    "base_stock": {"seeds": range(0, 8), "budget": 40},
    "newsvendor": {"seeds": range(0, 8), "budget": 40},
}
DEFAULT_PLAN = {"seeds": range(0, 20), "budget": 40}


def applicable(scenario: str) -> list[str]:
    """The baselines that are distinct rules on ``scenario``."""
    view = PlanningView(compile_network(load_scenario(scenario)))
    splits_stock = bool((view.allocation_lanes_per_location >= 2).any())
    return [p for p in POLICIES if splits_stock or p not in ALLOCATION_POLICIES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", help="shipped scenario (repeat; default: all)")
    parser.add_argument("--policy", action="append", help="baseline (repeat; default: all that apply)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for <scenario>/<policy>.yaml")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every budget (e.g. 0.25 to try)")
    args = parser.parse_args(argv)
    scenarios = args.scenario or shipped_scenarios()
    unknown = [s for s in scenarios if s not in shipped_scenarios()]
    if unknown:
        print(f"error: --scenario {unknown[0]}: not a shipped scenario ({', '.join(shipped_scenarios())})")
        return 2
    index_path = args.out / "index.yaml"
    index = yaml.safe_load(index_path.read_text(encoding="utf-8")) if index_path.exists() else {}
    index = index or {}
    started = time.perf_counter()
    for scenario in scenarios:
        plan = PLAN.get(scenario, DEFAULT_PLAN)
        seeds = list(plan["seeds"])
        budget = max(1, round(int(plan["budget"]) * args.budget_scale))
        policies = [p for p in applicable(scenario) if not args.policy or p in args.policy]
        entry = index.setdefault(scenario, {"policies": {}})
        for policy in policies:
            clock = time.perf_counter()
            print(f"[{time.perf_counter() - started:6.0f}s] {scenario} / {policy}: {len(seeds)} seeds, budget {budget}")
            sys.stdout.flush()
            result = tune(scenario, policy, seeds, budget=budget, progress=sys.stderr.isatty())
            path = save_params(result, args.out / scenario / f"{policy}.yaml")
            entry["policies"][policy] = {
                "params": dict(result.params),
                "mean_reward": round(float(result.mean_reward), 4),
                "stderr": round(float(result.stderr), 4),
                "seeds": format_seeds(seeds),
                "file": str(path.relative_to(args.out)),
            }
            print(
                f"        {' '.join(f'{k}={v}' for k, v in result.params.items())}: mean {result.mean_reward:,.2f} "
                f"± {result.stderr:,.2f} (s.e.) over {len(seeds)} training seeds, "
                f"{result.settings['evaluations']} candidates, {time.perf_counter() - clock:.0f} s → {path}"
            )
        ranked = sorted(entry["policies"].items(), key=lambda item: item[1]["mean_reward"], reverse=True)
        entry["best"] = ranked[0][0] if ranked else None
        args.out.mkdir(parents=True, exist_ok=True)
        header = "# Written by scripts/tune_baselines.py: tuned baselines per scenario, best by mean training reward.\n"
        index_path.write_text(header + yaml.safe_dump(index, sort_keys=True, allow_unicode=True), encoding="utf-8")
        print(f"        best on {scenario}: {entry['best']}")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
