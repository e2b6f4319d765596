"""A rule table as a :class:`~invalloc.sim.policy.Policy`.

Each period the policy computes the features (:class:`~invalloc.env.features.FeatureSet`),
finds the one matching rule, turns its outputs into the action and that action into
requested quantities with the environment's :class:`~invalloc.env.actions.ActionMapper` — the
same mapping a learned policy uses — so the feasibility layer sees the table exactly as it
would see the network it was extracted from. A table extracted from an ``anchored`` policy
(its metadata's ``action_mode``) corrects the rule recorded as its ``anchor``: the mapper
builds that rule (:func:`invalloc.agents.anchor.build_anchor`) when the table first acts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from invalloc.env.feature_definitions import FEATURE_SET_VERSION, FEATURE_SET_VERSIONS
from invalloc.rules.manifest import load_rule_table
from invalloc.rules.table import TABLE_ACTION_MODES, RuleTable, RuleTableError, action_outputs, anchor_label

if TYPE_CHECKING:
    from invalloc.env.actions import ActionMapper
    from invalloc.env.features import FeatureSet
    from invalloc.sim.network import Network
    from invalloc.sim.simulator import Simulator


class RuleTablePolicy:
    """Decides with a rule table; deterministic.

    :param table: a checked rule table whose outputs set the action of its metadata's
        ``action_mode`` (``compact`` when absent; ``anchored`` with the resolved ``anchor``).
    :param scenario_digest: sha256 of the scenario the table was extracted on; ``reset``
        refuses any other scenario (as SB3 refuses a model on a different space).
    :param name: the policy's name in reports.
    :ivar last_rule_id: the id of the rule that decided the last period (None before).
    """

    def __init__(self, table: RuleTable, scenario_digest: str, name: str = "rules") -> None:
        self.table = table
        self.scenario_digest = scenario_digest
        self.name = name
        self.last_rule_id: str | None = None
        self._simulator: Simulator | None = None
        self._features: FeatureSet | None = None
        self._mapper: ActionMapper | None = None
        self._actions: np.ndarray | None = None  # (R, n_actions) each rule's action, mapper order

    def reset(self, network: Network, seed: int | None = None) -> None:
        """Check the table fits ``network`` (scenario, features, outputs); nothing else to reset."""
        digest = network.loaded.digest
        if self.scenario_digest and digest != self.scenario_digest:
            raise RuleTableError(
                f"policy {self.name}: extracted on scenario {self.scenario_digest[:12]}…, "
                f"not on {network.scenario.name} ({digest[:12]}…)"
            )
        version = self.table.metadata.get("feature_set_version", FEATURE_SET_VERSION)
        if version not in FEATURE_SET_VERSIONS:
            raise RuleTableError(
                f"policy {self.name}: feature set version {version}, this evaluator computes versions "
                f"{', '.join(FEATURE_SET_VERSIONS)}"
            )
        self.last_rule_id = None

    def _bind(self, simulator: Simulator) -> None:
        """Features, action mapper and per-rule actions for ``simulator`` (once per simulator)."""
        if simulator is self._simulator:
            return
        # The simulator-side parts load here, not at import: loading and deciding need numpy only.
        from invalloc.env.features import FeatureSet

        features = FeatureSet(simulator.network, self.table.metadata.get("feature_set_version", FEATURE_SET_VERSION))
        if features.names != self.table.feature_names:
            missing = sorted(set(self.table.feature_names) ^ set(features.names))[:3]
            raise RuleTableError(f"policy {self.name}: features differ from the scenario's ({', '.join(missing)} …)")
        mapper = self._mapper_for(simulator)
        position = {name: k for k, name in enumerate(mapper.names)}
        actions_of_outputs = [o.action for o in self.table.outputs]
        if sorted(actions_of_outputs) != sorted(mapper.names):
            raise RuleTableError(
                f"policy {self.name}: outputs set {len(actions_of_outputs)} action dimensions, the scenario has "
                f"{mapper.size} ({', '.join(sorted(set(actions_of_outputs) ^ set(mapper.names))[:3])})"
            )
        transforms = {o.action: o.transform for o in action_outputs(mapper.names, mapper.mode)}
        for output in self.table.outputs:
            if output.transform != transforms[output.action]:
                raise RuleTableError(
                    f"policy {self.name}: output {output.name} reads its value by {output.transform}, "
                    f"{mapper.mode} actions read {output.action} by {transforms[output.action]}"
                )
        actions = np.zeros((len(self.table), mapper.size))
        actions[:, [position[a] for a in actions_of_outputs]] = self.table.actions()
        self._simulator, self._features, self._mapper, self._actions = simulator, features, mapper, actions

    def _mapper_for(self, simulator: Simulator) -> ActionMapper:
        """The action mapper of the table's action mode; an anchored table's rule is built here."""
        from invalloc.env.actions import ActionMapper
        from invalloc.sim.policy import PolicyError

        mode = self.table.metadata.get("action_mode", "compact")
        anchor = self.table.metadata.get("anchor")
        if mode not in TABLE_ACTION_MODES:
            raise RuleTableError(
                f"policy {self.name}: action_mode {mode!r}, rule tables set {' or '.join(TABLE_ACTION_MODES)} actions"
            )
        try:
            rule = None
            if mode == "anchored":
                from invalloc.agents.anchor import build_anchor

                rule = build_anchor(anchor if isinstance(anchor, dict) else {})
            return ActionMapper(simulator, mode, rule)
        except (PolicyError, ValueError) as error:
            what = f"its anchor {anchor_label(anchor)} (manifest field anchor)" if mode == "anchored" else "its action"
            scenario = simulator.network.scenario.name
            raise RuleTableError(
                f"policy {self.name}: {what} cannot act on {scenario}: {str(error).splitlines()[0]}"
            ) from None

    def features(self, simulator: Simulator) -> np.ndarray:
        """The table's input features (F,) at this decision point."""
        self._bind(simulator)
        assert self._features is not None
        return self._features.compute(simulator)

    def action(self, simulator: Simulator) -> np.ndarray:
        """The action (n_actions,) in [-1, 1] the matching rule gives (mapper order)."""
        x = self.features(simulator)
        rule = int(self.table.decide(x[None, :])[0])
        self.last_rule_id = self.table.rule_ids[rule]
        assert self._actions is not None
        return self._actions[rule]

    def act(self, simulator: Simulator) -> np.ndarray:
        """Requested quantities (n_decisions,) in units."""
        action = self.action(simulator)
        assert self._mapper is not None
        return self._mapper.requests(action)


def load_rule_policy(directory: str | Path, fmt: str = "json") -> RuleTablePolicy:
    """The rule table in ``directory`` as a policy, after verifying it
    (:func:`~invalloc.rules.manifest.verify_directory`: file hashes, no unlisted file, the audit
    log and the content digest it recorded at export and at every review).

    :param fmt: which file to read: ``json`` (default), ``csv`` or ``dmn`` — all decide alike.
    :raises RuleTableError: (a ``ValueError``) one line naming the file that is missing,
        tampered, malformed, overlapping or incomplete.
    """
    directory = Path(directory)
    table, manifest = load_rule_table(directory, fmt)
    digest = manifest.get("scenario", {}).get("digest", "")
    return RuleTablePolicy(table, digest, name=f"rules:{directory.name}")
