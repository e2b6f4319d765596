"""The in-memory rule table: conditions as ranges on named features, outputs, support.

A rule matches a feature vector ``x`` when ``lower[r, f] <= x[f] < upper[r, f]`` for every
feature ``f`` (``-inf``/``+inf`` where a feature is unconstrained). A valid table is a
*partition*: exactly one rule matches any input. :meth:`RuleTable.check` proves it (or
names an overlap or a gap with a point in it) by compiling the rules into a binary decision
tree over their own cut points; the same tree decides millions of states per second,
vectorised with numpy (:meth:`RuleTable.decide`).

Outputs are business values. A table extracted from a ``compact`` policy sets cover
multipliers (× the base cover of a SKU or a DC, in [0.5, 2]) and channel allocation weights
(relative, in [e⁻², e²]); one extracted from an ``anchored`` policy sets multipliers of the
anchor rule's order-up-to levels (per SKU and per DC) and channel weights (each in [0.5, 2]).
:class:`Output` says how each one becomes a dimension of the environment's action
(:mod:`invalloc.env.actions`): ``a = log2(multiplier)`` or ``a = ln(weight) / 2``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from invalloc.env.feature_definitions import Feature, identifier
from invalloc.sim.policy import PolicyError

#: Most rules a table may have when no other limit is given (the export default).
DEFAULT_MAX_RULES = 64
#: Rows decided per block: the block's feature columns stay in the CPU cache.
DECIDE_BLOCK_ROWS = 8_192
#: Transforms from an output's business value to its action dimension in [-1, 1].
TRANSFORMS = ("log2", "half_ln")
#: Rounding step of an anchored table's multipliers. Finer than a cover multiplier's 0.05: an
#: anchored policy's corrections to a tuned rule are small (a few per cent), and on `retail`
#: rounding them to 0.05 lost the teacher's whole gain over its anchor (profit retention 99.4%,
#: below the anchor alone), while 0.01 kept it (100.3%).
ANCHORED_STEP = 0.01
#: Action modes a rule table can set (:data:`invalloc.env.actions.ACTION_MODES` without ``raw``):
#: ``compact`` covers around a base cover, or ``anchored`` corrections to a rule-based policy.
TABLE_ACTION_MODES = ("compact", "anchored")


class RuleTableError(PolicyError):
    """A rule table that cannot be used (malformed, tampered, overlapping, incomplete, for
    another scenario); the message is one line naming the file or the rule."""


@dataclass(frozen=True)
class Output:
    """One output of a rule table and the action dimension it sets.

    :param name: identifier, e.g. ``sku_cover_multiplier_sku01`` or ``sku_level_multiplier_sku01``.
    :param unit: ``× base cover``, ``relative weight``, ``× anchor level`` or ``× anchor weight``.
    :param action: the :class:`~invalloc.env.actions.ActionMapper` name it sets.
    :param transform: ``log2`` (a = log2(value)) or ``half_ln`` (a = ln(value) / 2).
    :param step: business rounding of the value (a multiple of ``step``), or 0 for two
        significant figures.
    """

    name: str
    unit: str
    description: str
    action: str
    transform: str
    step: float = 0.0

    def to_action(self, values: np.ndarray) -> np.ndarray:
        """Action values in [-1, 1] for business values (any shape)."""
        values = np.maximum(np.asarray(values, dtype=float), 1e-12)
        raw = np.log2(values) if self.transform == "log2" else np.log(values) / 2.0
        return np.clip(raw, -1.0, 1.0)

    def from_action(self, actions: np.ndarray) -> np.ndarray:
        """Business values for action values in [-1, 1], rounded (see ``step``)."""
        actions = np.clip(np.asarray(actions, dtype=float), -1.0, 1.0)
        values = 2.0**actions if self.transform == "log2" else np.exp(2.0 * actions)
        precision = output_precision(self)
        if values.ndim == 0:
            return round_to(float(values), precision)
        return np.vectorize(lambda v: round_to(v, precision), otypes=[float])(values)


def significant(value: float, digits: int = 2) -> float:
    """``value`` rounded to ``digits`` significant figures (0 stays 0)."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


#: Significant digits of a rule's support (the share of states it matched) as written.
SUPPORT_DIGITS = 3
#: Significant digits of a threshold on a feature whose unit has no decimal step, and of an
#: output without a ``step`` (a compact table's channel weights).
DEFAULT_DIGITS = 2
#: Decimal step of thresholds on features of a unit: days to ½ day, ratios to 0.01.
UNIT_STEPS = {"days": 0.5, "ratio": 0.01}


def feature_precision(feature: Feature) -> dict[str, float | int]:
    """The precision of thresholds on ``feature``: ``{"step": s}`` (a multiple of ``s``) or
    ``{"significant_digits": d}``, as a reviewer would write them (see :data:`UNIT_STEPS`)."""
    step = UNIT_STEPS.get(feature.unit)
    return {"step": step} if step else {"significant_digits": DEFAULT_DIGITS}


def output_precision(output: Output) -> dict[str, float | int]:
    """The precision of ``output``'s values: its ``step``, else :data:`DEFAULT_DIGITS` significant digits."""
    return {"step": output.step} if output.step > 0 else {"significant_digits": DEFAULT_DIGITS}


def round_to(value: float, precision: dict) -> float:
    """``value`` rounded to ``precision`` (``step`` or ``significant_digits``), as the float
    nearest to the decimal result: ``19 × 0.05`` is ``0.95``, never ``0.9500000000000001``.

    A step rounds half to even (as ``numpy.round``); infinities and NaN pass through.
    """
    value = float(value)
    if not math.isfinite(value):
        return value
    step = float(precision.get("step") or 0.0)
    if step > 0:
        multiple = float(np.round(value / step))
        return float(Decimal(int(multiple)) * Decimal(repr(step))) + 0.0  # + 0.0: no negative zero
    return significant(value, int(precision.get("significant_digits") or DEFAULT_DIGITS)) + 0.0


def conforms(value: float, precision: dict) -> bool:
    """Whether ``value``, written as :func:`number_text` writes it, has no more than ``precision``
    allows: a multiple of ``step`` exactly (as decimals), or at most ``significant_digits``."""
    value = float(value)
    if not math.isfinite(value):
        return True
    decimal = Decimal(repr(value))
    step = float(precision.get("step") or 0.0)
    if step > 0:
        return (decimal / Decimal(repr(step))) % 1 == 0
    return significant_digits(value) <= int(precision.get("significant_digits") or DEFAULT_DIGITS)


def significant_digits(value: float) -> int:
    """Significant digits of ``value`` as written (shortest repr; trailing zeros of an integer
    do not count: ``1200000`` has 2, ``0.0950`` has 2, ``0.9500000000000001`` has 16)."""
    if value == 0 or not math.isfinite(value):
        return 1 if value == 0 else 0
    return len(Decimal(repr(float(value))).normalize().as_tuple().digits)


def compact_outputs(action_names: list[str]) -> list[Output]:
    """The outputs that set the compact action ``action_names`` (``ActionMapper.names``)."""
    return action_outputs(action_names, "compact")


def action_outputs(action_names: list[str], mode: str = "compact", anchor: str = "the anchor rule") -> list[Output]:
    """The outputs that set the action ``action_names`` (``ActionMapper.names``) of ``mode``.

    ``compact``: ``cover/sku/X`` and ``cover/location/D`` become cover multipliers,
    ``allocation_weight/C`` a relative weight (``half_ln``). ``anchored``: ``level_scale/sku/X``
    and ``level_scale/location/D`` become multipliers of the anchor's order-up-to level and
    ``allocation_weight/C`` a multiplier of the anchor's channel weight, each ``2^a`` in
    [0.5, 2] (``log2``; 1 everywhere is the anchor exactly).

    :param anchor: how descriptions name the anchor rule (e.g. ``priority@tuned``).
    :raises RuleTableError: a mode or action name rule tables do not support.
    """
    if mode not in TABLE_ACTION_MODES:
        raise RuleTableError(f"action_mode {mode!r}: rule tables set {' or '.join(TABLE_ACTION_MODES)} actions")
    outputs = []
    for action in action_names:
        kind, *rest = action.split("/")
        if mode == "compact" and kind == "cover" and len(rest) == 2 and rest[0] in ("sku", "location"):
            prefix, what = ("sku", f"SKU {rest[1]}") if rest[0] == "sku" else ("dc", rest[1])
            outputs.append(
                Output(
                    f"{prefix}_cover_multiplier_{identifier(rest[1])}",
                    "× base cover",
                    f"order-up-to cover {'of' if rest[0] == 'sku' else 'at'} {what} as a multiple of its base cover "
                    "(0.5–2)",
                    action,
                    "log2",
                    0.05,
                )
            )
        elif mode == "anchored" and kind == "level_scale" and len(rest) == 2 and rest[0] in ("sku", "location"):
            prefix, what = ("sku", f"SKU {rest[1]}") if rest[0] == "sku" else ("dc", rest[1])
            other = "the DC's" if rest[0] == "sku" else "the SKU's"
            outputs.append(
                Output(
                    f"{prefix}_level_multiplier_{identifier(rest[1])}",
                    "× anchor level",
                    f"order-up-to level {'of' if rest[0] == 'sku' else 'at'} {what} as a multiple of the level "
                    f"{anchor} sets (0.5–2; multiplies with {other} multiplier)",
                    action,
                    "log2",
                    ANCHORED_STEP,
                )
            )
        elif mode == "compact" and kind == "allocation_weight" and len(rest) == 1:
            outputs.append(
                Output(
                    f"channel_allocation_weight_{identifier(rest[0])}",
                    "relative weight",
                    f"weight of channel {rest[0]} when a DC splits its stock by need (1 = in proportion to need)",
                    action,
                    "half_ln",
                    0.0,
                )
            )
        elif mode == "anchored" and kind == "allocation_weight" and len(rest) == 1:
            outputs.append(
                Output(
                    f"channel_weight_multiplier_{identifier(rest[0])}",
                    "× anchor weight",
                    f"weight of channel {rest[0]} in the allocation of {anchor}, as a multiple of the rule's own "
                    "(0.5–2; 1 = as the rule allocates)",
                    action,
                    "log2",
                    ANCHORED_STEP,
                )
            )
        else:
            raise RuleTableError(f"action {action!r}: not an action dimension of a {mode} rule table")
    return outputs


def output_group(output: Output) -> str:
    """The decision ``output`` belongs to: its name without the SKU, DC or channel it is for
    (``sku_level_multiplier_sku01`` → ``sku_level_multiplier``); an output whose name does not
    end with its action's last part (hand-written tables) is a group of its own."""
    parts = output.action.split("/")
    if len(parts) >= 2:
        suffix = "_" + identifier(parts[-1])
        if output.name.endswith(suffix) and len(output.name) > len(suffix):
            return output.name[: -len(suffix)]
    return output.name


def output_groups(outputs: list[Output]) -> dict[str, list[int]]:
    """Output indices per group (:func:`output_group`), groups and members in output order."""
    groups: dict[str, list[int]] = {}
    for k, output in enumerate(outputs):
        groups.setdefault(output_group(output), []).append(k)
    return groups


def round_support(support: np.ndarray) -> np.ndarray:
    """Shares of states rounded to :data:`SUPPORT_DIGITS` significant digits (the written support)."""
    precision = {"significant_digits": SUPPORT_DIGITS}
    return np.array([round_to(v, precision) for v in np.asarray(support, dtype=float)])


def precision_problem(table: RuleTable, precision: dict | None = None, source: str = "rule table") -> str | None:
    """The first number of ``table`` with more digits than ``precision`` states (one line), or None.

    :param precision: ``{"features": {name: p}, "outputs": {name: p}, "support": p}`` as the
        manifest records it (:func:`table_precision`); None: the table's own definitions.
    """
    precision = precision or table_precision(table)
    features, outputs = precision.get("features") or {}, precision.get("outputs") or {}
    support = precision.get("support")
    for r, rid in enumerate(table.rule_ids):
        for j, feature in enumerate(table.features):
            wanted = features.get(feature.name)
            for bound in (table.lower[r, j], table.upper[r, j]):
                if wanted is not None and not conforms(bound, wanted):
                    return f"{source}: rule {rid}: threshold {bound!r} on {feature.name} is finer than {_says(wanted)}"
        for k, output in enumerate(table.outputs):
            wanted = outputs.get(output.name)
            if wanted is not None and not conforms(table.values[r, k], wanted):
                value = float(table.values[r, k])
                return f"{source}: rule {rid}: output {output.name} = {value!r} is finer than {_says(wanted)}"
        if support is not None and not conforms(table.support[r], support):
            return f"{source}: rule {rid}: support {float(table.support[r])!r} is finer than {_says(support)}"
    return None


def _says(precision: dict) -> str:
    if precision.get("step"):
        return f"its stated step {number_text(float(precision['step']))}"
    return f"its stated {precision.get('significant_digits')} significant digits"


def table_precision(table: RuleTable) -> dict:
    """The precision ``table`` is written with, per feature (thresholds) and output (values),
    and of support: what the manifest states (``precision``)."""
    return {
        "features": {f.name: feature_precision(f) for f in table.features},
        "outputs": {o.name: output_precision(o) for o in table.outputs},
        "support": {"significant_digits": SUPPORT_DIGITS},
    }


def anchor_label(anchor: dict | None) -> str:
    """How a rule table names its anchor: the spec it was trained with (``priority@tuned``), else the rule."""
    if not isinstance(anchor, dict):
        return "the anchor rule"
    return str(anchor.get("spec") or anchor.get("policy") or "the anchor rule")


def number_text(value: float) -> str:
    """A float as a plain decimal (no exponent: FEEL has none) that reads back to the same float."""
    text = format(Decimal(repr(float(value))), "f")
    return text[:-2] if text.endswith(".0") else text


def condition_text(lower: float, upper: float) -> str:
    """A FEEL unary test for ``lower <= x < upper``: ``-``, ``< b``, ``>= a`` or ``[a..b)``."""
    if lower == -np.inf and upper == np.inf:
        return "-"
    if lower == -np.inf:
        return f"< {number_text(upper)}"
    if upper == np.inf:
        return f">= {number_text(lower)}"
    return f"[{number_text(lower)}..{number_text(upper)})"


def rule_id(lower: np.ndarray, upper: np.ndarray) -> str:
    """A stable id from a rule's conditions: the same conditions always get the same id."""
    text = ";".join(condition_text(lo, hi) for lo, hi in zip(lower, upper, strict=True))
    return "R" + hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass
class _Tree:
    """Compiled decision tree: node arrays; a leaf's ``feature`` is -1 and ``rule`` its rule."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    rule: np.ndarray
    depth: int


@dataclass
class RuleTable:
    """Rules over ``features`` with ``outputs`` (see the module docstring).

    :param lower: (R, F) inclusive lower bounds (``-inf`` = none).
    :param upper: (R, F) exclusive upper bounds (``+inf`` = none).
    :param values: (R, O) output values in business units.
    :param support: (R,) share of the visited states each rule matched (sums to 1 on export).
    :param rule_ids: (R,) stable ids.
    :param metadata: scenario name and digest, feature set version, table name.
    """

    features: list[Feature]
    outputs: list[Output]
    lower: np.ndarray
    upper: np.ndarray
    values: np.ndarray
    support: np.ndarray
    rule_ids: list[str]
    metadata: dict = field(default_factory=dict)
    _tree: _Tree | None = field(default=None, repr=False, compare=False)
    _masks: list | None = field(default=None, repr=False, compare=False)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def __len__(self) -> int:
        return len(self.rule_ids)

    # ------------------------------------------------------------------ validation
    def check(self, source: str = "rule table") -> None:
        """Raise :class:`RuleTableError` unless exactly one rule matches any input.

        Also checks shapes, finite outputs, non-empty ranges and unique ids. The message
        names ``source`` and the rules involved, with a point where they overlap or a point
        no rule covers.
        """
        n_rules, n_features = len(self.rule_ids), len(self.features)
        if n_rules == 0:
            raise RuleTableError(f"{source}: no rules")
        for name, array, width in (
            ("conditions", self.lower, n_features),
            ("conditions", self.upper, n_features),
            ("outputs", self.values, len(self.outputs)),
        ):
            if array.shape != (n_rules, width):
                raise RuleTableError(f"{source}: {name} have shape {array.shape}, expected ({n_rules}, {width})")
        if len(set(self.rule_ids)) != n_rules:
            duplicate = next(i for i in self.rule_ids if self.rule_ids.count(i) > 1)
            raise RuleTableError(f"{source}: rule id {duplicate} appears more than once")
        if np.isnan(self.lower).any() or np.isnan(self.upper).any():
            raise RuleTableError(f"{source}: a condition has a NaN bound")
        if not np.isfinite(self.values).all():
            r = int(np.flatnonzero(~np.isfinite(self.values).all(axis=1))[0])
            raise RuleTableError(f"{source}: rule {self.rule_ids[r]} has a missing or non-finite output")
        empty = ~(self.lower < self.upper)
        if empty.any():
            r, f = (int(i) for i in np.argwhere(empty)[0])
            raise RuleTableError(
                f"{source}: rule {self.rule_ids[r]} can never match: its range on {self.features[f].name} is empty"
            )
        self._tree = self._compile(source)
        self._masks = self._bitsets()

    def _bitsets(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Per constrained feature: its cut points (K,) and, per elementary interval (K + 1,),
        the bitset (K + 1, W) uint64 of the rules whose range covers it."""
        n_rules = len(self.rule_ids)
        words = (n_rules + 63) // 64
        bit = np.zeros((n_rules, words), dtype=np.uint64)
        bit[np.arange(n_rules), np.arange(n_rules) // 64] = np.left_shift(
            np.uint64(1), (np.arange(n_rules) % 64).astype(np.uint64)
        )
        masks = []
        for f in range(len(self.features)):
            bounds = np.concatenate((self.lower[:, f], self.upper[:, f]))
            cuts = np.unique(bounds[np.isfinite(bounds)])
            if len(cuts) == 0:
                continue  # no rule constrains this feature
            # Interval k is [cuts[k-1], cuts[k]); its left end (−inf for k = 0) represents it exactly.
            left_ends = np.concatenate(([-np.inf], cuts))
            lower, upper = self.lower[:, f][None, :], self.upper[:, f][None, :]
            covers = (lower <= left_ends[:, None]) & (left_ends[:, None] < upper)  # (K + 1, R)
            table = np.zeros((len(left_ends), words), dtype=np.uint64)
            for w in range(words):
                chunk = slice(64 * w, min(64 * (w + 1), n_rules))
                table[:, w] = np.bitwise_or.reduce(np.where(covers[:, chunk], bit[chunk, w][None, :], 0), axis=1)
            masks.append((f, cuts, table))
        return masks

    def _compile(self, source: str) -> _Tree:
        """The decision tree over the rules' cut points; raises on an overlap or a gap."""
        lower, upper = self.lower, self.upper
        n_features = lower.shape[1]
        feature: list[int] = []
        threshold: list[float] = []
        left: list[int] = []
        right: list[int] = []
        rule: list[int] = []
        depth = 0
        # Work list: (node index, region lower (F,), region upper (F,), candidate rules, depth).
        root_lo, root_hi = np.full(n_features, -np.inf), np.full(n_features, np.inf)
        stack = [(0, root_lo, root_hi, np.arange(len(self.rule_ids)), 0)]
        feature.append(-1), threshold.append(0.0), left.append(0), right.append(0), rule.append(-1)
        while stack:
            node, lo, hi, candidates, level = stack.pop()
            depth = max(depth, level)
            inside = (lower[candidates] < hi).all(axis=1) & (upper[candidates] > lo).all(axis=1)
            rules = candidates[inside]
            if len(rules) == 0:
                point = ", ".join(f"{self.features[f].name}={_point_in(lo[f], hi[f]):g}" for f in range(n_features))
                raise RuleTableError(f"{source}: incomplete — no rule matches {point}")
            # Cut points strictly inside the region, per feature, from the rules' bounds.
            best: tuple[int, int, float] | None = None  # (worse side's rule count, feature, cut)
            for f in range(n_features):
                cuts = np.concatenate((lower[rules, f], upper[rules, f]))
                cuts = np.unique(cuts[(cuts > lo[f]) & (cuts < hi[f])])
                if len(cuts) == 0:
                    continue
                below = (lower[rules, f][None, :] < cuts[:, None]).sum(axis=1)
                above = (upper[rules, f][None, :] > cuts[:, None]).sum(axis=1)
                worst = np.maximum(below, above)
                k = int(np.argmin(worst))
                if best is None or worst[k] < best[0]:
                    best = (int(worst[k]), f, float(cuts[k]))
            if best is None:
                if len(rules) > 1:
                    point = ", ".join(f"{self.features[f].name}={_point_in(lo[f], hi[f]):g}" for f in range(n_features))
                    ids = " and ".join(self.rule_ids[r] for r in rules[:2])
                    raise RuleTableError(f"{source}: overlapping rules — {ids} both match {point}")
                rule[node] = int(rules[0])
                continue
            _, f, cut = best
            feature[node], threshold[node] = f, cut
            for side in (0, 1):
                child = len(feature)
                feature.append(-1), threshold.append(0.0), left.append(0), right.append(0), rule.append(-1)
                child_lo, child_hi = lo.copy(), hi.copy()
                if side == 0:
                    left[node] = child
                    child_hi[f] = cut
                else:
                    right[node] = child
                    child_lo[f] = cut
                stack.append((child, child_lo, child_hi, rules, level + 1))
        feature_array = np.array(feature, dtype=np.int64)
        leaves = feature_array < 0
        index = np.arange(len(feature))
        # Leaves point to themselves so that every state can take the same number of steps.
        left_array = np.where(leaves, index, np.array(left, dtype=np.int64))
        right_array = np.where(leaves, index, np.array(right, dtype=np.int64))
        return _Tree(
            np.where(leaves, 0, feature_array),
            np.where(leaves, np.inf, np.array(threshold)),
            left_array,
            right_array,
            np.array(rule, dtype=np.int64),
            depth,
        )

    # ------------------------------------------------------------------ deciding
    def decide(self, features: np.ndarray) -> np.ndarray:
        """Index of the matching rule for each row of ``features`` (N, F) → (N,) int64.

        Vectorised: per constrained feature, one ``searchsorted`` into its cut points gives
        the bitset of rules covering the value; the bitsets are AND-ed and the one bit left
        is the rule (the table was checked to be a partition). Raises
        :class:`RuleTableError` on a NaN feature (no rule can match it).
        """
        if self._masks is None:
            self.check()
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise RuleTableError(f"features have shape {x.shape}, expected (N, {len(self.features)})")
        # A sum is cheaper than isnan over the whole array; only a non-finite sum needs the exact check.
        if not np.isfinite(x.sum()) and np.isnan(x).any():
            row, col = (int(i) for i in np.argwhere(np.isnan(x))[0])
            raise RuleTableError(f"row {row}: feature {self.features[col].name} is missing (NaN)")
        masks = self._masks
        assert masks is not None
        n_rows = x.shape[0]
        if not masks:  # no rule constrains any feature: a single rule
            return np.zeros(n_rows, dtype=np.int64)
        words = masks[0][2].shape[1]
        rules = np.empty(n_rows, dtype=np.int64)
        # Blocks of rows small enough to stay in cache while every feature column is read.
        for start in range(0, n_rows, DECIDE_BLOCK_ROWS):
            block = x[start : start + DECIDE_BLOCK_ROWS]
            match = None  # (n, W) uint64: bit r of word w set while rule 64·w + r still matches
            for f, cuts, table in masks:
                # Elementary interval of each value between the feature's cut points, then the
                # rules that cover that interval, as a bitset.
                hits = table[np.searchsorted(cuts, block[:, f], side="right")]
                if match is None:
                    match = hits
                else:
                    match &= hits
            assert match is not None
            if words == 1:
                word, bits = 0, match[:, 0]
            else:
                word = np.argmax(match != 0, axis=1)
                bits = match[np.arange(len(block)), word]
            # The one set bit's position: log2 of a power of two is exact in float64.
            rules[start : start + len(block)] = word * 64 + np.log2(bits.astype(np.float64)).astype(np.int64)
        return rules

    def decide_values(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Matching rule index (N,) and its outputs (N, O) for features (N, F)."""
        rules = self.decide(features)
        return rules, self.values[rules]

    def actions(self) -> np.ndarray:
        """Each rule's outputs as action values (R, O) in [-1, 1] (output order)."""
        return np.column_stack([o.to_action(self.values[:, j]) for j, o in enumerate(self.outputs)])

    def conditions(self, r: int) -> dict[str, str]:
        """Rule ``r``'s FEEL condition per feature (``-`` where unconstrained)."""
        return {f.name: condition_text(self.lower[r, j], self.upper[r, j]) for j, f in enumerate(self.features)}


def boundary_grid(table: RuleTable) -> np.ndarray:
    """States (N, F) on, just below and just above every rule boundary, plus each rule's centre.

    For each finite bound of each rule: three states on that feature (the bound, the float
    below it, the float above) with the other features at the rule's centre — so every
    boundary is probed from both sides. Deterministic.
    """

    lower, upper = table.lower, table.upper
    finite_lower, finite_upper = np.isfinite(lower), np.isfinite(upper)
    low, high = np.where(finite_lower, lower, 0.0), np.where(finite_upper, upper, 0.0)
    centre = np.where(
        finite_lower & finite_upper,
        (low + high) / 2,
        np.where(finite_lower, low + 1.0, np.where(finite_upper, high - 1.0, 0.0)),
    )
    rows = [centre]
    for f in range(lower.shape[1]):
        for bounds in (lower[:, f], upper[:, f]):
            finite = np.isfinite(bounds)
            for value in (bounds, np.nextafter(bounds, -np.inf), np.nextafter(bounds, np.inf)):
                block = centre[finite].copy()
                block[:, f] = value[finite]
                rows.append(block)
    return np.unique(np.concatenate(rows), axis=0)


def _point_in(lower: float, upper: float) -> float:
    """A point of [lower, upper) to show in an error message."""
    if math.isfinite(lower):
        return lower
    if math.isfinite(upper):
        return upper - 1.0
    return 0.0
