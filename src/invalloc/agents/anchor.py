"""The rule a learned policy is anchored on (``env.action_mode: anchored``).

An anchored agent outputs a bounded correction to a rule-based policy's order-up-to levels and
channel weights (:mod:`invalloc.env.actions`); its action 0 *is* the rule. The rule is named
by a baseline spec (``proportional@tuned``: the parameters tuned and shipped for the scenario),
resolved once when training starts into plain data, ``{"policy": NAME, "params": {KEY: VALUE}}``,
that the run and the saved policy record. So a learned policy always acts on the rule it was
trained on, even after the shipped tuned parameters change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from invalloc.baselines.specs import baseline_policy, parse_baseline_spec
from invalloc.sim.policy import PolicyError
from invalloc.sim.rule_policy import RuleBasedPolicy


def resolve_anchor(spec: str, scenario_name: str | None) -> dict[str, Any]:
    """``{"policy", "params", "spec"}`` for a baseline spec such as ``proportional@tuned``.

    :raises PolicyError: one line naming the spec: not a baseline spec, an unknown rule, a
        params file that is missing or tuned on another scenario, or a rule that cannot anchor.
    """
    try:
        parsed = parse_baseline_spec(str(spec).strip(), scenario_name)
    except PolicyError as error:
        raise PolicyError(f"anchor {spec}: {error}") from None
    if parsed is None:
        raise PolicyError(f"anchor {spec}: not a baseline spec (expected NAME[@tuned|@FILE][:KEY=VALUE…])")
    name, params, _ = parsed
    anchor = {"policy": name, "params": dict(params), "spec": str(spec).strip()}
    build_anchor(anchor)  # its parameters are checked now, not in the first env
    return anchor


def build_anchor(anchor: Mapping[str, Any]) -> RuleBasedPolicy:
    """A fresh rule-based policy from a resolved anchor (one per environment: it keeps state).

    :raises PolicyError: the rule is not a replenishment rule with order-up-to levels, or its
        parameters are rejected.
    """
    try:
        name, params = str(anchor["policy"]), {str(k): str(v) for k, v in dict(anchor["params"]).items()}
    except (KeyError, TypeError, ValueError) as error:
        raise PolicyError(f"anchor: malformed ({error}); expected policy and params") from None
    try:
        policy = baseline_policy(name, params)
    except PolicyError as error:
        raise PolicyError(f"anchor {name}: {error}") from None
    if not isinstance(policy, RuleBasedPolicy) or policy.replenishment == "none":
        raise PolicyError(
            f"anchor {name}: a learned policy anchors on a rule with order-up-to levels "
            "(base_stock, s_S, proportional, priority or fixed_split)"
        )
    return policy


__all__ = ["build_anchor", "resolve_anchor"]
