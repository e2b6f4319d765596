"""Imitation of a trained policy by a rule table (DAgger with VIPER's state weighting).

1. Roll out the teacher (``teacher_episodes``) and record, per visited state, the rule
   table's features, the teacher's observation and the *money at stake* there; roll it out
   on ``validation_episodes`` more seeds, kept apart for choosing the table.
2. Repeat ``iterations`` times: fit one CART regression tree (scikit-learn, at most
   ``max_rules`` leaves) from the features to the teacher's actions on every state seen so
   far, weighting each state by its stake; turn the tree into a rule table (thresholds and
   outputs rounded to business values); roll the *table* out, label the states it visits
   with the teacher's action and add them to the data (DAgger: the student learns to
   recover from its own mistakes). The teacher's own states stay in the data throughout,
   so the table must follow the teacher on both distributions.
3. Keep the table whose worse agreement — on the states it visited itself (before they
   joined the data) or on the teacher's validation states — is best.

The stake of a state (VIPER weights states by how much the decision matters there) is the
value, at standard cost, of the quantities that the action can move in that state: requests
at the largest action minus requests at the smallest (the largest cover and the smallest, or
for an ``anchored`` teacher the anchor rule's levels × 4 and × ¼ with its channel weights × 2
and × ½). Where stock is plentiful no sensible action orders anything and the state barely
counts; where cover is short every unit of the action is money. A floor keeps every state in
the fit.

The teacher acts in ``compact`` or ``anchored`` mode. It observes with its own observation
(the full one, all features or a subset); the table's inputs are always the scenario's whole
:class:`~invalloc.env.features.FeatureSet`, and its outputs set the teacher's action
(:func:`~invalloc.rules.table.action_outputs`), so the table acts through the same mapper —
for an anchored teacher, on the same anchor rule, recorded with the table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from invalloc.env.actions import ActionMapper
from invalloc.env.features import FeatureSet
from invalloc.rules.policy import RuleTablePolicy
from invalloc.rules.table import (
    DEFAULT_MAX_RULES,
    TABLE_ACTION_MODES,
    RuleTable,
    action_outputs,
    anchor_label,
    round_support,
    rule_id,
    significant,
)
from invalloc.sim.network import Network
from invalloc.sim.simulator import PeriodReport, Simulator

#: A second, stricter tolerance (action units) whose agreement is always reported beside the chosen one.
STRICT_TOLERANCE = 0.1


class Teacher(Protocol):
    """What extraction needs of a trained policy (:class:`invalloc.agents.learned.LearnedPolicy`)."""

    name: str
    scenario_digest: str
    #: ``compact`` or ``anchored`` (rule tables set no ``raw`` actions).
    action_mode: str
    #: With ``anchored``: the resolved rule its actions correct (:func:`invalloc.agents.anchor.resolve_anchor`).
    anchor: dict[str, Any] | None

    def reset(self, network: Network, seed: int | None = None) -> None: ...

    def observation(self, simulator: Simulator) -> np.ndarray: ...

    def actions(self, observations: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ExtractionSettings:
    """How a rule table is extracted (recorded in the manifest).

    :param max_rules: most rules in the table (leaves of the tree).
    :param iterations: DAgger rounds (fit, roll out the table, label its states).
    :param episodes_per_iteration: episodes rolled out by each iteration's table.
    :param teacher_episodes: episodes rolled out by the teacher before the first fit (0: as
        many as ``episodes_per_iteration``).
    :param validation_episodes: further teacher episodes, never fitted, on which each
        iteration's table is judged beside its own states.
    :param seed: seed of the first extraction episode; episodes use consecutive seeds.
    :param min_leaf_fraction: smallest share of the total weight a rule may hold.
    :param min_gain: smallest weighted decrease of the mean squared action error (squared
        action units, averaged over outputs) for which a rule is split in two; stops the
        tree from spending rules on differences far below the fidelity tolerance.
    :param stake_floor: weight floor as a share of the mean stake, so no state is ignored.
    :param stake_weighting: weight states by their stake (VIPER); False weighs every state alike,
        as the fidelity measure does.
    :param fidelity_tolerance: an output agrees with the teacher when its action value is
        within this distance (action units; the action range [-1, 1] is 2 wide). 0.25 is an
        eighth of the range: a cover or level multiplier within a factor 2^0.25 (±19%), a
        compact allocation weight within e^0.5, an anchored channel weight multiplier within
        2^0.25. Agreement at the strict :data:`STRICT_TOLERANCE` is reported too.
    :param evaluation_episodes: held-out episodes for fidelity and KPI retention.
    :param evaluation_seed: seed of the first held-out episode (far from the extraction seeds).
    """

    max_rules: int = DEFAULT_MAX_RULES
    iterations: int = 4
    episodes_per_iteration: int = 20
    teacher_episodes: int = 120
    validation_episodes: int = 10
    seed: int = 0
    min_leaf_fraction: float = 0.002
    min_gain: float = 1e-5
    stake_floor: float = 0.1
    stake_weighting: bool = True
    fidelity_tolerance: float = 0.25
    evaluation_episodes: int = 10
    evaluation_seed: int = 100_000

    def __post_init__(self) -> None:
        if self.max_rules < 1:
            raise ValueError(f"max_rules={self.max_rules}: must be at least 1")
        if self.iterations < 1 or self.episodes_per_iteration < 1 or self.evaluation_episodes < 1:
            raise ValueError("iterations, episodes_per_iteration and evaluation_episodes must be at least 1")
        if self.teacher_episodes < 0 or self.validation_episodes < 0:
            raise ValueError("teacher_episodes and validation_episodes must be at least 0")


@dataclass
class Visits:
    """States visited in rollouts: features (N, F), teacher observations (N, M), stake (N,)
    in currency, the teacher's actions (N, A) once labelled, and each episode's reports."""

    features: np.ndarray
    observations: np.ndarray
    stake: np.ndarray
    teacher_actions: np.ndarray | None = None
    episodes: list[list[PeriodReport]] = field(default_factory=list)

    @classmethod
    def concat(cls, parts: list[Visits]) -> Visits:
        return cls(
            np.concatenate([p.features for p in parts]),
            np.concatenate([p.observations for p in parts]),
            np.concatenate([p.stake for p in parts]),
            np.concatenate([p.teacher_actions for p in parts])
            if all(p.teacher_actions is not None for p in parts)
            else None,
            [e for p in parts for e in p.episodes],
        )


def teacher_mapper(simulator: Simulator, teacher: Teacher) -> ActionMapper:
    """The action mapper of ``teacher``'s action mode (with a fresh copy of its anchor rule).

    :raises ValueError: a mode rule tables cannot set (``raw``).
    """
    mode = teacher.action_mode
    if mode not in TABLE_ACTION_MODES:
        raise ValueError(
            f"teacher {teacher.name} acts in action_mode={mode!r}; rule tables set "
            f"{' or '.join(map(repr, TABLE_ACTION_MODES))} actions"
        )
    if mode == "anchored":
        from invalloc.agents.anchor import build_anchor

        return ActionMapper(simulator, mode, build_anchor(teacher.anchor or {}))
    return ActionMapper(simulator, mode)


class Rollouts:
    """Runs episodes on one simulator and records what extraction needs."""

    def __init__(self, simulator: Simulator, teacher: Teacher) -> None:
        self.simulator = simulator
        self.network = simulator.network
        self.teacher = teacher
        self.features = FeatureSet(self.network)
        self.mapper = teacher_mapper(simulator, teacher)
        n = self.network
        decision_sku = np.zeros(n.n_decisions, dtype=np.int64)
        for _kind, _lane, skus, span in n.decision_blocks:
            decision_sku[span] = skus
        self._unit_value = n.standard_cost[decision_sku]  # currency per unit of each decision
        self._high = np.ones(self.mapper.size)
        self._low = -np.ones(self.mapper.size)

    def stake(self) -> float:
        """Money the action can move in the current state (currency, at standard cost)."""
        high = self.mapper.requests(self._high)
        low = self.mapper.requests(self._low)
        return float(self._unit_value @ np.abs(high - low))

    def run(self, seeds: list[int], student: RuleTablePolicy | None) -> Visits:
        """Episodes on ``seeds`` acted by ``student`` (or by the teacher when None), labelled."""
        sim, teacher = self.simulator, self.teacher
        features, observations, stakes, episodes = [], [], [], []
        for seed in seeds:
            sim.reset(seed=seed)
            teacher.reset(self.network, seed=seed)
            if student is not None:
                student.reset(self.network, seed=seed)
            reports = []
            while not sim.done:
                x = self.features.compute(sim)
                observation = teacher.observation(sim)
                features.append(x)
                observations.append(observation)
                stakes.append(self.stake())
                if student is None:
                    action = teacher.actions(observation[None, :])[0].astype(np.float64)
                else:
                    action = student.action(sim)
                reports.append(sim.step(self.mapper.requests(action)))
            episodes.append(reports)
        visits = Visits(np.array(features), np.array(observations, dtype=np.float32), np.array(stakes))
        visits.teacher_actions = np.asarray(teacher.actions(visits.observations), dtype=np.float64)
        visits.episodes = episodes
        return visits


def round_threshold(value: float, unit: str) -> float:
    """A split point as a reviewer would write it: days to ½ day, ratios to 0.01, money and
    other quantities to two significant figures (the precision
    :func:`~invalloc.rules.table.feature_precision` states in the manifest)."""
    if unit == "days":
        return round(value * 2.0) / 2.0
    if unit == "ratio":
        return round(value, 2)
    return float(significant(value, 2))


def tree_to_table(tree, feature_set: FeatureSet, outputs, metadata: dict) -> RuleTable:
    """Rule boxes of a fitted scikit-learn tree with rounded thresholds (``x < t`` goes left).

    Rounding can empty a box (two nearby splits on one feature round to one value); such a
    box is dropped — the rounded tree still sends every point down exactly one path, so the
    remaining boxes still partition the feature space. Output values are placeholders.
    """
    structure = tree.tree_
    n_features = feature_set.size
    units = [f.unit for f in feature_set.features]
    boxes = []
    stack = [(0, np.full(n_features, -np.inf), np.full(n_features, np.inf))]
    while stack:
        node, lower, upper = stack.pop()
        left, right = structure.children_left[node], structure.children_right[node]
        if left < 0:
            if (lower < upper).all():
                boxes.append((lower, upper, structure.value[node][:, 0].copy()))
            continue
        f = int(structure.feature[node])
        cut = round_threshold(float(structure.threshold[node]), units[f])
        left_upper, right_lower = upper.copy(), lower.copy()
        left_upper[f] = min(upper[f], cut)
        right_lower[f] = max(lower[f], cut)
        stack.append((left, lower, left_upper))
        stack.append((right, right_lower, upper))
    # A deterministic order: by the lower bounds, feature by feature.
    boxes.sort(key=lambda box: tuple(box[0]) + tuple(box[1]))
    lower = np.array([b[0] for b in boxes])
    upper = np.array([b[1] for b in boxes])
    leaf_actions = np.array([b[2] for b in boxes])
    values = np.column_stack([o.from_action(leaf_actions[:, j]) for j, o in enumerate(outputs)])
    table = RuleTable(
        features=list(feature_set.features),
        outputs=list(outputs),
        lower=lower,
        upper=upper,
        values=values,
        support=np.zeros(len(boxes)),
        rule_ids=[rule_id(lo, hi) for lo, hi in zip(lower, upper, strict=True)],
        metadata=dict(metadata),
    )
    table.check("extracted table")
    return table


def refit_outputs(table: RuleTable, visits: Visits, weights: np.ndarray) -> None:
    """Each rule's outputs: the weighted mean teacher action of the states it matches, in
    business values; support: the share of those states. Rules matching none keep the tree's."""
    assert visits.teacher_actions is not None
    rules = table.decide(visits.features)
    n_rules = len(table)
    weight_sum = np.bincount(rules, weights=weights, minlength=n_rules)
    for j, output in enumerate(table.outputs):
        total = np.bincount(rules, weights=weights * visits.teacher_actions[:, j], minlength=n_rules)
        seen = weight_sum > 0
        mean = np.divide(total, weight_sum, out=np.zeros(n_rules), where=seen)
        table.values[seen, j] = output.from_action(mean[seen])
    table.support = np.bincount(rules, minlength=n_rules) / max(len(rules), 1)


def agreement(table: RuleTable, visits: Visits, tolerance: float) -> dict[str, float]:
    """How closely the table's actions follow the teacher's on ``visits``.

    ``agreement``: share of (state, output) pairs within ``tolerance`` action units (the
    fidelity); ``all_outputs_agree``: share of states where every output does;
    ``mean_abs_error``: mean |table − teacher| in action units.
    """
    assert visits.teacher_actions is not None
    actions = table.actions()[table.decide(visits.features)]
    error = np.abs(actions - visits.teacher_actions)
    within = error <= tolerance + 1e-9
    return {
        "agreement": float(within.mean()),
        "agreement_strict": float((error <= STRICT_TOLERANCE + 1e-9).mean()),
        "all_outputs_agree": float(within.all(axis=1).mean()),
        "mean_abs_error": float(error.mean()),
        "states": int(len(actions)),
    }


@dataclass
class Extraction:
    """The extracted table, the data it was fitted on and each iteration's record."""

    table: RuleTable
    data: Visits
    history: list[dict]
    settings: ExtractionSettings
    #: What rounding thresholds and outputs did to the chosen table (:func:`rounding_effect`).
    rounding: dict = field(default_factory=dict)

    def record(self) -> dict:
        return {**asdict(self.settings), "states": int(len(self.data.stake)), "history": self.history}


def extract(
    simulator: Simulator, teacher: Teacher, settings: ExtractionSettings, metadata: dict | None = None
) -> Extraction:
    """Extract a rule table imitating ``teacher`` on ``simulator``'s scenario (module docstring).

    Same settings and teacher, same table: the tree's random state is ``settings.seed`` and
    every episode's seed is fixed.
    """
    from sklearn.tree import DecisionTreeRegressor

    rollouts = Rollouts(simulator, teacher)
    anchor = teacher.anchor if teacher.action_mode == "anchored" else None
    outputs = action_outputs(rollouts.mapper.names, teacher.action_mode, anchor_label(anchor))
    metadata = {
        "scenario": simulator.network.scenario.name,
        "scenario_digest": simulator.network.loaded.digest,
        "feature_set_version": rollouts.features.version,
        "action_mode": teacher.action_mode,
        "anchor": anchor,
        **(metadata or {}),
    }
    per = settings.episodes_per_iteration
    first = settings.teacher_episodes or per
    seeds = iter(range(settings.seed, settings.seed + first + settings.validation_episodes + per * settings.iterations))
    data = rollouts.run([next(seeds) for _ in range(first)], student=None)
    validation = rollouts.run([next(seeds) for _ in range(settings.validation_episodes)], student=None)
    history: list[dict] = []
    best: tuple[float, int, RuleTable, Any] | None = None
    for iteration in range(1, settings.iterations + 1):
        weights = _weights(data.stake, settings.stake_floor) if settings.stake_weighting else np.ones(len(data.stake))
        tree = DecisionTreeRegressor(
            max_leaf_nodes=max(settings.max_rules, 2),
            min_weight_fraction_leaf=settings.min_leaf_fraction,
            min_impurity_decrease=settings.min_gain,
            random_state=settings.seed,
        )
        assert data.teacher_actions is not None
        tree.fit(data.features, data.teacher_actions, sample_weight=weights)
        table = tree_to_table(tree, rollouts.features, outputs, metadata)
        refit_outputs(table, data, weights)
        student = RuleTablePolicy(table, metadata["scenario_digest"], name=f"rules-iteration-{iteration}")
        visited = rollouts.run([next(seeds) for _ in range(per)], student=student)
        fit = agreement(table, visited, settings.fidelity_tolerance)["agreement"]
        on_teacher = (
            agreement(table, validation, settings.fidelity_tolerance)["agreement"] if len(validation.stake) else fit
        )
        profit = float(np.mean([sum(r.profit for r in episode) for episode in visited.episodes]))
        history.append(
            {
                "iteration": iteration,
                "rules": len(table),
                "fidelity_on_own_states": fit,
                "fidelity_on_teacher_validation_states": on_teacher,
                "mean_profit": profit,
                "training_states": int(len(data.stake)),
            }
        )
        # Best worse-of-both agreement first, then fewer rules, then the later iteration (more data).
        score = min(fit, on_teacher)
        if best is None or (score, -len(table)) >= (best[0], -len(best[2])):
            best = (score, iteration, table, tree)
        data = Visits.concat([data, visited])
    assert best is not None
    table = best[2]
    # Support over every state seen in extraction (rounded as written); outputs stay those the
    # table was judged with.
    table.support = round_support(np.bincount(table.decide(data.features), minlength=len(table)) / len(data.stake))
    for record in history:
        record["chosen"] = record["iteration"] == best[1]
    states = Visits.concat([data, validation]) if len(validation.stake) else data
    rounding = rounding_effect(best[3], table, states, settings.fidelity_tolerance)
    return Extraction(table, data, history, settings, rounding)


def tree_leaves(structure, features: np.ndarray, thresholds: np.ndarray, strict: bool) -> np.ndarray:
    """The leaf of a fitted tree's ``structure`` each row of ``features`` reaches, descending
    with ``thresholds`` (``x < t`` goes left when ``strict``, as a table reads a rounded cut;
    ``x <= t`` as scikit-learn reads its own)."""
    node = np.zeros(len(features), dtype=np.int64)
    rows = np.arange(len(features))
    while True:
        left = structure.children_left[node]
        inner = left >= 0
        if not inner.any():
            return node
        value = features[rows, np.where(inner, structure.feature[node], 0)]
        cut = thresholds[node]
        go_left = value < cut if strict else value <= cut
        node = np.where(inner, np.where(go_left, left, structure.children_right[node]), node)


def rounding_effect(tree, table: RuleTable, visits: Visits, tolerance: float) -> dict:
    """What rounding thresholds and outputs to business values did, on every state of ``visits``
    (all states seen in extraction, the teacher's validation states included).

    ``states_on_the_same_side``: share of states that reach the same leaf of the fitted tree
    with its exact split points and with the rounded ones (every threshold test unchanged);
    ``fidelity_unrounded``/``fidelity_rounded``: agreement with the teacher (at ``tolerance``)
    of the exact tree's leaf actions and of the rounded table; ``fidelity_change``: their
    difference (rounded − unrounded).
    """
    assert visits.teacher_actions is not None
    structure = tree.tree_
    units = {j: f.unit for j, f in enumerate(table.features)}
    exact = structure.threshold.astype(np.float64)
    rounded = np.array(
        [
            round_threshold(float(t), units[int(f)]) if f >= 0 else t
            for t, f in zip(exact, structure.feature, strict=True)
        ]
    )
    # scikit-learn compares float32 features with its cuts; the table compares float64 ones.
    exact_leaves = tree_leaves(structure, visits.features.astype(np.float32), exact, False)
    same = exact_leaves == tree_leaves(structure, visits.features, rounded, True)
    unrounded_actions = np.clip(tree.predict(visits.features).reshape(len(visits.stake), -1), -1.0, 1.0)
    error = np.abs(unrounded_actions - visits.teacher_actions)
    before = float((error <= tolerance + 1e-9).mean())
    after = agreement(table, visits, tolerance)["agreement"]
    return {
        "states": int(len(visits.stake)),
        "states_on_the_same_side": float(same.mean()),
        "fidelity_unrounded": before,
        "fidelity_rounded": after,
        "fidelity_change": after - before,
        "tolerance": tolerance,
    }


def _weights(stake: np.ndarray, floor: float) -> np.ndarray:
    """Stake normalised to mean 1, at least ``floor``."""
    mean = float(stake.mean()) if len(stake) else 0.0
    if mean <= 0:
        return np.ones_like(stake)
    return np.maximum(stake / mean, floor)
