"""Baseline specs, ``NAME[@FILE][:KEY=VALUE…]``: parsed and resolved into a policy name and its
parameters, for ``--policy`` (:mod:`invalloc.evaluation.specs`) and for the rule a learned policy
is anchored on (:mod:`invalloc.agents.anchor`).

``base_stock``
    a baseline by name with its default parameters;
``base_stock:cover=2.5:stop=auto``
    with parameters (``:``-separated ``KEY=VALUE``; values may hold commas: ``levels=60,150,300``);
``proportional@tuned``
    with the parameters shipped for the scenario (``invalloc/tuned/<scenario>/proportional.yaml``,
    or the project's ``configs/tuned/…``); ``NAME@FILE`` reads a file written by ``invalloc tune``;
    ``:KEY=VALUE`` after it overrides;
``@tuned.yaml``
    the policy and parameters the file names.
"""

from __future__ import annotations

import re

from invalloc.baselines import POLICY_NAMES, make_policy
from invalloc.sim.policy import Policy, PolicyError

# NAME[@FILE][:KEY=VALUE[:KEY=VALUE…]] — a file name may not contain ':'.
BASELINE_SPEC = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)?(?:@(?P<file>[^:]+))?(?::(?P<params>.*))?$")


def _pairs(params: str) -> list[tuple[str, str]]:
    pairs = []
    for part in params.split(":"):
        if "=" not in part or not part.split("=", 1)[0].strip():
            raise PolicyError(f"parameter '{part}' is not KEY=VALUE (parameters are separated by ':')")
        key, value = part.split("=", 1)
        pairs.append((key.strip(), value.strip()))
    return pairs


def parse_baseline_spec(
    text: str, scenario_name: str | None = None, forms: str = "NAME[@FILE][:KEY=VALUE…]"
) -> tuple[str, dict[str, str], str | None] | None:
    """``(name, params, file)`` of a baseline spec, the params file (if any) read here; None if
    ``text`` does not have the form of one.

    :param scenario_name: if given, a params file must have been tuned on the scenario of this name.
    :param forms: the accepted forms, named in the message for an unknown policy.
    :raises PolicyError: one line (without the spec): an unknown policy, an unreadable or
        mismatched params file, a parameter that is not ``KEY=VALUE``.
    """
    match = BASELINE_SPEC.match(text)
    if match is None or not (match["name"] or match["file"]):
        return None
    name, file = match["name"], match["file"]
    if name is not None and name not in POLICY_NAMES:
        raise PolicyError(f"unknown policy '{name}' (choose from {', '.join(POLICY_NAMES)}, or {forms})")
    params: dict[str, str] = {}
    if file is not None:
        from invalloc.baselines.tuning import load_params

        name, params = load_params(file, policy=name, scenario=scenario_name)
    if match["params"] is not None:
        params.update(_pairs(match["params"]))
    return name, params, file


def baseline_policy(name: str, params: dict[str, str], actions: str | None = None) -> Policy:
    """:func:`make_policy`, its message without the ``--param``/``--policy NAME`` of the CLI."""
    try:
        return make_policy(name, params, actions)
    except PolicyError as error:
        message = str(error).replace("--param ", "parameter ")
        own = f"--policy {name}"  # make_policy names the policy itself; say it once
        message = message.removeprefix(own).lstrip(": ") if message.startswith(own + " ") else message
        raise PolicyError(message) from None


__all__ = ["BASELINE_SPEC", "baseline_policy", "parse_baseline_spec"]
