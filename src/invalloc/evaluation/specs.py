"""Policy specs: the strings planners type after ``--policy``, parsed and resolved into policies.

=====================================  ==========================================================
spec                                   policy
=====================================  ==========================================================
``base_stock``                         a baseline by name with its default parameters
``base_stock:cover=2.5:stop=auto``     a baseline with parameters (``:``-separated ``KEY=VALUE``;
                                       values may hold commas: ``levels=60,150,300``)
``base_stock@tuned.yaml``              a baseline with parameters from a file written by
                                       ``invalloc tune`` (``:KEY=VALUE`` after it overrides)
``@tuned.yaml``                        the policy and parameters the file names
``replay:actions=actions.csv``         the replay baseline
``oracle``                             the hindsight-optimal LP (:mod:`invalloc.baselines.oracle`)
``run:RUN_ID``                         a trained agent: the ``best`` model of an MLflow run
``models:/NAME@ALIAS``, ``runs:/…``    a trained agent from the MLflow model registry / a run URI,
                                       or a registered rule table (its version tagged
                                       ``invalloc.kind = rule_table``)
``rules:DIR``                          an exported rule table (:mod:`invalloc.rules`)
=====================================  ==========================================================

A spec is resolved once in the calling process — files are read, models are loaded and
checked against the scenario — so every problem is reported before an episode runs, as
one line naming the spec. Worker processes rebuild each policy from the resolved
:class:`PolicySpec` (picklable; a params file is not read again).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from invalloc.sim.policy import Policy, PolicyError

if TYPE_CHECKING:
    from invalloc.config.loader import LoadedScenario

#: What a spec points at: a rule-based baseline, a trained agent in MLflow, an exported rule table.
SpecKind = Literal["baseline", "learned", "rules"]

_LEARNED_PREFIXES = ("run:", "runs:/", "models:/")
_MODEL_URI_PREFIXES = ("runs:/", "models:/")
_RULES_PREFIX = "rules:"
_SPEC_FORMS = "a baseline NAME[@FILE][:KEY=VALUE…], run:RUN_ID, models:/NAME@ALIAS or rules:DIR"


@dataclass(frozen=True)
class PolicySpec:
    """A parsed and resolved ``--policy`` spec.

    :param text: the spec as typed; it labels the policy in every table and plot.
    :param kind: ``baseline``, ``learned`` or ``rules``.
    :param name: baseline name (``base_stock`` …); for learned and rule policies the name the
        loaded policy reports (filled in by :func:`resolve_specs`).
    :param params: baseline parameters as ``(key, value)`` pairs, file values first then overrides.
    :param source: the params file, run/model URI or rules folder the spec names, or None.
    """

    text: str
    kind: SpecKind
    name: str
    params: tuple[tuple[str, str], ...] = ()
    source: str | None = None

    @property
    def is_oracle(self) -> bool:
        return self.kind == "baseline" and self.name == "oracle"

    def describe(self) -> str:
        """One line for reports, e.g. ``baseline base_stock (cover=2.55, stop=auto) from tuned.yaml``."""
        params = f" ({', '.join(f'{k}={v}' for k, v in self.params)})" if self.params else ""
        source = f" from {self.source}" if self.source else ""
        return f"{self.kind} {self.name}{params}{source}"


def _fail(text: str, message: str) -> PolicyError:
    return PolicyError(" ".join(f"--policy {text}: {message}".split()))


def parse_spec(text: str, scenario_name: str | None = None) -> PolicySpec:
    """Parse ``text`` (see the module docstring); a params file named with ``@`` is read here.

    :param scenario_name: if given, a params file must have been tuned on the scenario of this name.
    :raises PolicyError: one line naming the spec.
    """
    text = str(text).strip()
    if not text:
        raise PolicyError("--policy: empty spec (expected " + _SPEC_FORMS + ")")
    if text.startswith(_LEARNED_PREFIXES):
        if not text.split(":", 1)[1].strip("/"):
            raise _fail(text, "no run id or model name after the prefix")
        return PolicySpec(text, "learned", text, source=text)
    if text.startswith(_RULES_PREFIX):
        folder = text.removeprefix(_RULES_PREFIX)
        if not folder:
            raise _fail(text, "no rules folder after 'rules:'")
        return PolicySpec(text, "rules", text, source=folder)
    from invalloc.baselines.specs import parse_baseline_spec

    try:
        parsed = parse_baseline_spec(text, scenario_name, forms=_SPEC_FORMS)
    except PolicyError as error:
        raise _fail(text, str(error)) from None
    if parsed is None:
        raise _fail(text, f"not a policy spec (expected {_SPEC_FORMS})")
    name, params, file = parsed
    return PolicySpec(text, "baseline", name, tuple(params.items()), source=file)


def build_policy(spec: PolicySpec, tracking_uri: str | None = None) -> Policy:
    """A fresh policy for ``spec`` (called once per process that runs episodes).

    :param tracking_uri: the MLflow store learned policies are loaded from (None: the default).
    :raises PolicyError: one line naming the spec — bad parameters, a run or model that cannot be
        loaded, a rules folder that cannot be read, or a module this installation lacks.
    """
    if spec.kind == "baseline":
        from invalloc.baselines.specs import baseline_policy

        params = dict(spec.params)
        actions = params.pop("actions", None) if spec.name == "replay" else None
        try:
            return baseline_policy(spec.name, params, actions)
        except PolicyError as error:
            raise _fail(spec.text, str(error)) from None
    if spec.source and spec.source.startswith(_MODEL_URI_PREFIXES) and spec.kind in ("learned", "rules"):
        policy = _registered_rule_table(spec, tracking_uri)
        if policy is not None:
            return policy
    if spec.kind == "learned":
        try:
            from invalloc.agents.learned import load_learned_policy
        except ImportError as error:
            raise _fail(spec.text, f"learned policies cannot be loaded here ({_missing(error)})") from None
        try:
            with _quiet_mlflow_warnings():
                return load_learned_policy(spec.text, tracking_uri)
        except (ValueError, OSError) as error:  # PolicyError is a ValueError
            raise _fail(spec.text, _strip_spec(str(error), spec.text)) from None
    try:
        from invalloc.rules import load_rule_policy
    except ImportError as error:
        raise _fail(spec.text, f"rule tables cannot be loaded here ({_missing(error)})") from None
    try:
        return load_rule_policy(Path(spec.source or ""))
    except (ValueError, OSError) as error:
        raise _fail(spec.text, _strip_spec(str(error), spec.text)) from None


def _registered_rule_table(spec: PolicySpec, tracking_uri: str | None) -> Policy | None:
    """The rule table policy of a registered rule table model, or None if ``spec`` names a
    trained agent (a ``rules`` spec always names a rule table: :func:`resolve_specs` set it)."""
    try:
        from invalloc.rules.registry import is_registered_rule_table, load_registered_policy
    except ImportError as error:
        raise _fail(spec.text, f"rule tables cannot be loaded here ({_missing(error)})") from None
    source = str(spec.source)
    if spec.kind != "rules" and not is_registered_rule_table(source, tracking_uri):
        return None
    try:
        return load_registered_policy(source, tracking_uri)
    except (ValueError, OSError) as error:
        raise _fail(spec.text, _strip_spec(str(error), spec.text)) from None


@contextlib.contextmanager
def _quiet_mlflow_warnings() -> Iterator[None]:
    """Drop MLflow's UserWarnings (model type hints) shown while a model loads.

    MLflow re-enables them itself (``simplefilter("once")`` inside its decorators), so a
    warnings filter cannot; they would otherwise print before a one-line error.
    """
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - warnings' signature
        if issubclass(category, UserWarning) and f"{os.sep}mlflow{os.sep}" in str(filename):
            return
        shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def _missing(error: ImportError) -> str:
    name = getattr(error, "name", None)
    return f"module {name} is not installed" if name else " ".join(str(error).split())


def _strip_spec(message: str, text: str) -> str:
    """Loader messages often start with the spec already; do not repeat it."""
    message = " ".join(message.split())
    return message.removeprefix(f"{text}: ") or message


def check_scenario(spec: PolicySpec, policy: Policy, loaded: LoadedScenario) -> None:
    """A trained agent or rule table must have been made for the scenario it is compared on.

    Policies without a ``scenario_digest`` (baselines) fit any scenario.

    :raises PolicyError: naming both digests (first 12 hex digits).
    """
    digest = getattr(policy, "scenario_digest", None)
    if digest is not None and digest != loaded.digest:
        raise _fail(
            spec.text,
            f"made for a different scenario (digest {str(digest)[:12]}) than --scenario "
            f"{loaded.scenario.name} (digest {loaded.digest[:12]}); compare it on the scenario it was trained on",
        )


def resolve_specs(
    texts: Sequence[str], loaded: LoadedScenario, tracking_uri: str | None = None
) -> list[tuple[PolicySpec, Policy]]:
    """Parse every spec, build its policy and check it fits ``loaded`` — before any episode runs.

    :raises PolicyError: the first bad spec, one line; also for a spec given twice.
    """
    seen: set[str] = set()
    resolved = []
    for text in texts:
        spec = parse_spec(text, scenario_name=loaded.scenario.name)
        if spec.text in seen:
            raise _fail(spec.text, "given twice; every policy is compared once")
        seen.add(spec.text)
        policy = build_policy(spec, tracking_uri)
        check_scenario(spec, policy, loaded)
        if spec.kind != "baseline":
            from invalloc.rules.policy import RuleTablePolicy

            # A registered rule table named by models:/… is a rule table from here on (workers too).
            kind = "rules" if isinstance(policy, RuleTablePolicy) else spec.kind
            spec = PolicySpec(spec.text, kind, str(getattr(policy, "name", spec.text)), source=spec.source)
        resolved.append((spec, policy))
    return resolved


__all__ = ["PolicySpec", "SpecKind", "build_policy", "check_scenario", "parse_spec", "resolve_specs"]
