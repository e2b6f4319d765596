"""How closely any model of a given form can follow a trained policy: the ceilings behind rule export.

Rolls the teacher (``--run RUN_ID``) out on ``--episodes`` extraction seeds (0, 1, …) and on
``--held-out`` evaluation seeds (100,000, …, as ``invalloc export`` evaluates), then fits each
model below on the first and prints its agreement with the teacher on the second — the share of
(state, output) pairs within the export's fidelity tolerance (0.25 action units):

- linear in the teacher's own observation (ridge regression): is the teacher nearly linear?
- a season schedule: the mean action per period, ignoring the state;
- CART trees on the rule table's features with 64 and 128 leaves (the rule budget; no
  rounding, no DAgger), and a random forest on the same features (what no single table beats).

Also printed: the spread of the teacher's actions between episodes at the same period (action
units, standard deviation of action − schedule). Used in README (Rule export)::

    .venv/bin/python scripts/imitability.py --run RUN_ID [--tracking-uri URI] [--episodes 200] [--held-out 40]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np


def _within(predicted: np.ndarray, actual: np.ndarray, tolerance: float) -> float:
    return float((np.abs(predicted - actual) <= tolerance + 1e-9).mean())


def _schedule(periods: np.ndarray, actions: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The mean action per period of ``periods``, looked up for the periods ``at`` (N, A)."""
    means = {p: actions[periods == p].mean(axis=0) for p in np.unique(periods)}
    overall = actions.mean(axis=0)
    return np.array([means.get(p, overall) for p in at])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="MLflow run id of the trained policy.")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--episodes", type=int, default=200, help="Teacher episodes to fit on.")
    parser.add_argument("--held-out", type=int, default=40, help="Teacher episodes to measure on.")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()

    from invalloc.agents.learned import load_learned_policy
    from invalloc.export import scenario_of_run
    from invalloc.sim.network import compile_network
    from invalloc.sim.simulator import Simulator
    from invalloc.tracking import configure_tracking

    uri = configure_tracking(args.tracking_uri)
    teacher = load_learned_policy(f"run:{args.run}", uri)
    with tempfile.TemporaryDirectory(prefix="imitability-") as folder:
        simulator = Simulator(compile_network(scenario_of_run(args.run, uri, Path(folder))), check_invariants=False)
        _measure(args, teacher, simulator)


def _measure(args: argparse.Namespace, teacher: object, simulator: object) -> None:
    """Fit the imitators on the teacher's episodes and print their agreement on held-out ones."""
    from scipy.linalg import LinAlgWarning
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    from invalloc.export.extraction import ExtractionSettings, Rollouts

    settings = ExtractionSettings()
    rollouts = Rollouts(simulator, teacher)
    fit = rollouts.run(list(range(args.episodes)), student=None)
    seeds = range(settings.evaluation_seed, settings.evaluation_seed + args.held_out)
    held_out = rollouts.run(list(seeds), student=None)
    assert fit.teacher_actions is not None and held_out.teacher_actions is not None
    tolerance = settings.fidelity_tolerance
    actual = held_out.teacher_actions
    remaining = rollouts.features.names.index("days_remaining")
    schedule = _schedule(fit.features[:, remaining], fit.teacher_actions, held_out.features[:, remaining])
    with warnings.catch_warnings():
        # The observation has collinear columns (forecasts follow the season); only the fit's
        # predictions matter here, not its coefficients.
        warnings.simplefilter("ignore", LinAlgWarning)
        ridge = Ridge(alpha=1e-4).fit(fit.observations.astype(np.float64), fit.teacher_actions)
    figures = {
        "run": args.run,
        "observation": teacher.observation_kind,
        "observation_size": int(fit.observations.shape[1]),
        "features": len(rollouts.features.names),
        "outputs": int(actual.shape[1]),
        "tolerance": tolerance,
        "fit_states": int(len(fit.stake)),
        "held_out_states": int(len(held_out.stake)),
        "spread_within_period": float((actual - schedule).std(axis=0).mean()),
        "linear_in_observation": _within(ridge.predict(held_out.observations.astype(np.float64)), actual, tolerance),
        "season_schedule": _within(schedule, actual, tolerance),
        "season_schedule_strict": _within(schedule, actual, 0.1),
    }
    for leaves in (64, 128):
        tree = DecisionTreeRegressor(
            max_leaf_nodes=leaves, min_weight_fraction_leaf=settings.min_leaf_fraction, random_state=0
        ).fit(fit.features, fit.teacher_actions)
        figures[f"tree_{leaves}_leaves"] = _within(tree.predict(held_out.features), actual, tolerance)
    forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=5, n_jobs=-1, random_state=0)
    forest.fit(fit.features, fit.teacher_actions)
    figures["random_forest"] = _within(forest.predict(held_out.features), actual, tolerance)
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"teacher {args.run} ({figures['observation']} observation, {figures['observation_size']} values; "
        f"{figures['outputs']} outputs): fitted on {args.episodes} episodes, measured on {args.held_out} held-out "
        f"episodes; agreement = share of outputs within {tolerance} action units"
    )
    print(f"  spread between episodes at the same period: {figures['spread_within_period']:.3f} action units")
    print(f"  linear in the teacher's observation: {figures['linear_in_observation']:.2%}")
    print(
        f"  season schedule (mean action per period): {figures['season_schedule']:.2%} "
        f"(strict 0.1: {figures['season_schedule_strict']:.2%})"
    )
    print(
        f"  CART on the {figures['features']} rule features: 64 leaves {figures['tree_64_leaves']:.2%}, "
        f"128 leaves {figures['tree_128_leaves']:.2%}; random forest {figures['random_forest']:.2%}"
    )


if __name__ == "__main__":
    main()
