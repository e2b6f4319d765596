"""The challenger loop: is a new rule table better than the champion, on the same demand?

:func:`run_challenge` compares the champion and the challenger with
:func:`invalloc.evaluation.compare.run_comparison` — both run episode ``i`` on seed
``seed + i``, so they meet identical demand (common random numbers) — and logs the
comparison as one MLflow run (experiment ``compare``, tagged ``invalloc.command=challenge``).
The challenger's registered model version gets the alias :data:`CHALLENGER_ALIAS` only when
its mean total reward per episode is higher than the champion's with the paired 95%
confidence interval above 0; otherwise the registry is left as it was. Either way the version
is not promoted: ``invalloc rules approve`` still moves ``champion``.

Governance sits above evaluation: this module imports the comparison; nothing below imports it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

#: Registry alias of a table shown better than the champion (still to be approved).
CHALLENGER_ALIAS = "challenger"
#: The KPI a challenger must beat the champion on (the objective every policy is trained and compared on).
CHALLENGE_KPI = "total_reward"


class ChallengeError(ValueError):
    """A challenge that cannot run as asked (an unregistered challenger, the same table twice …); one line."""


def _rules_directory(spec: str) -> Path | None:
    return Path(spec.removeprefix("rules:")) if spec.startswith("rules:") else None


def _parse_model_uri(spec: str) -> tuple[str, str | None, str | None]:
    """``models:/NAME@ALIAS`` → (NAME, ALIAS, None); ``models:/NAME/VERSION`` → (NAME, None, VERSION)."""
    rest = spec.removeprefix("models:/").strip("/")
    if "@" in rest:
        name, alias = rest.rsplit("@", 1)
        if name and alias:
            return name, alias, None
    elif "/" in rest:
        name, version = rest.rsplit("/", 1)
        if name and version.isdigit():
            return name, None, version
    raise ChallengeError(f"{spec}: expected models:/NAME@ALIAS or models:/NAME/VERSION")


def _registry_block(spec: str, option: str) -> tuple[dict, dict, Path]:
    """The registry block of a ``rules:DIR`` table after verifying the directory (no store needed).

    :raises ChallengeError: an unregistered table.
    :raises RuleTableError: a directory that does not verify.
    """
    from invalloc.rules.manifest import verify_directory

    directory = _rules_directory(spec)
    assert directory is not None
    manifest = verify_directory(directory)
    registry = manifest.get("registry")
    if not registry:
        raise ChallengeError(
            f"{option} {spec}: not registered (its manifest has no registry block); export it with --register "
            "so that the challenger alias has a version to point at"
        )
    return registry, manifest, directory


def registered_version(spec: str, tracking_uri: str, option: str = "--challenger") -> dict[str, str]:
    """The registered model version ``spec`` names: ``{"model_name", "version"}``.

    ``rules:DIR``: the version its manifest's ``registry`` block records, which must carry the
    table's content digest (:func:`~invalloc.rules.registry.check_registered_content`).
    ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``: looked up in the registry.

    :raises ChallengeError: a spec that names no registered rule table.
    :raises RuleTableError: a table that does not verify or does not match its registered version.
    """
    import mlflow

    from invalloc.rules.manifest import content_digest
    from invalloc.rules.registry import check_registered_content

    if spec.startswith("rules:"):
        registry, manifest, directory = _registry_block(spec, option)
        check_registered_content(registry, tracking_uri, content_digest(manifest), directory)
        return {"model_name": str(registry["model_name"]), "version": str(registry["version"])}
    if spec.startswith("models:/"):
        from invalloc.rules.registry import KIND_TAG, RULE_TABLE_KIND

        name, alias, version = _parse_model_uri(spec)
        client = mlflow.MlflowClient(tracking_uri)
        found = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
        if found.tags.get(KIND_TAG) != RULE_TABLE_KIND:
            raise ChallengeError(f"{option} {spec}: {name} v{found.version} is not a rule table (a trained agent?)")
        return {"model_name": name, "version": str(found.version)}
    raise ChallengeError(f"{option} {spec}: a registered rule table is rules:DIR or models:/NAME@ALIAS")


def _check_offline(champion: str, challenger: str) -> None:
    """What can be checked before the tracking store is touched: spec forms, the directories, registration.

    :raises ChallengeError, RuleTableError: one line naming the option.
    """
    from invalloc.rules.manifest import verify_directory

    for option, spec in (("--champion", champion), ("--challenger", challenger)):
        if not spec.startswith(("rules:", "models:/")):
            raise ChallengeError(f"{option} {spec}: a rule table is rules:DIR or models:/NAME@ALIAS")
        if spec.startswith("models:/"):
            _parse_model_uri(spec)
        elif option == "--champion":
            directory = _rules_directory(spec)
            assert directory is not None
            verify_directory(directory)
    if challenger.startswith("rules:"):
        _registry_block(challenger, "--challenger")


def _scenario_of(spec: str, tracking_uri: str | None = None) -> str | None:
    """The scenario a table was exported on: a ``rules:DIR`` table's manifest or, with
    ``tracking_uri``, the ``invalloc.scenario`` tag of a registered version; else None."""
    from invalloc.rules.manifest import read_manifest

    directory = _rules_directory(spec)
    if directory is not None:
        return (read_manifest(directory).get("scenario") or {}).get("name")
    if tracking_uri is None or not spec.startswith("models:/"):
        return None
    import mlflow

    from invalloc.rules.registry import SCENARIO_TAG

    name, alias, version = _parse_model_uri(spec)
    client = mlflow.MlflowClient(tracking_uri)
    found = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    return found.tags.get(SCENARIO_TAG)


def run_challenge(
    champion: str,
    challenger: str,
    scenario: str | None = None,
    episodes: int = 30,
    seed: int = 10_000,
    tracking_uri: str | None = None,
    processes: int | None = None,
    progress: bool = True,
    demand_trace: str | Path | None = None,
) -> dict[str, Any]:
    """Compare ``challenger`` with ``champion`` on common random numbers; alias the challenger if better.

    :param champion: the table in production (``rules:DIR`` or ``models:/NAME@champion``).
    :param challenger: the candidate, a *registered* table (``rules:DIR`` exported with
        registration, or ``models:/…``): the alias needs a version to point at.
    :param scenario: where to compare (None: the scenario the champion, else the challenger, was
        exported on).
    :param episodes: paired episodes (≥ 2 for a confidence interval); ``seed`` is episode 0's.
    :param demand_trace: compare on this demand instead of the scenario's random demand — recent
        demand, say (CSV ``period,channel,sku,quantity``; every episode replays it, the other
        draws follow each episode's seed). The tables still run on their own scenario.
    :returns: ``{"champion", "challenger", "scenario", "episodes", "seeds", "kpi",
        "mean_difference", "ci_low", "ci_high", "p_value", "verdict", "better", "alias_set",
        "model_name", "version", "mlflow_run_id", "tracking_uri"}``.
    :raises ChallengeError, PolicyError, RuleTableError: bad input, before any episode runs.
    """
    import mlflow

    from invalloc.config.loader import load_scenario
    from invalloc.evaluation.compare import run_comparison
    from invalloc.tracking import configure_tracking

    champion, challenger = str(champion).strip(), str(challenger).strip()
    if champion == challenger:
        raise ChallengeError(f"--challenger {challenger}: is the champion; give another table")
    if episodes < 2:
        raise ChallengeError(f"--episodes {episodes}: a paired confidence interval needs at least 2")
    # Everything that needs no store first: a bad spec or table must not create or touch one.
    _check_offline(champion, challenger)
    scenario = scenario or _scenario_of(champion) or _scenario_of(challenger)
    if scenario:
        loaded = load_scenario(scenario)  # a ScenarioError names the file and field, before any store is touched
        if demand_trace is not None:
            from invalloc.sim.network import compile_network
            from invalloc.sim.simulator import Simulator

            Simulator(compile_network(loaded), check_invariants=False, demand_trace=demand_trace)  # DemandTraceError
    uri = configure_tracking(tracking_uri)
    scenario = scenario or _scenario_of(champion, uri) or _scenario_of(challenger, uri)
    if not scenario:
        raise ChallengeError("--scenario: give the scenario to compare on (neither table records one)")
    version = registered_version(challenger, uri)
    try:
        same = registered_version(champion, uri, "--champion") == version
    except ChallengeError:
        same = False  # an unregistered champion is fine: only the challenger gets an alias
    if same:
        raise ChallengeError(
            f"--challenger {challenger}: is the same registered version as the champion "
            f"({version['model_name']} v{version['version']})"
        )
    comparison = run_comparison(
        scenario,
        [champion, challenger],
        episodes,
        seed,
        reference=champion,
        tracking_uri=uri,
        processes=processes,
        progress=progress,
        demand_trace=None if demand_trace is None else str(demand_trace),
    )
    paired = comparison.paired
    row = paired[(paired["policy"] == challenger) & (paired["kpi"] == CHALLENGE_KPI)].iloc[0]
    low, high = float(row["ci_low"]), float(row["ci_high"])
    better = math.isfinite(low) and low > 0.0
    client = mlflow.MlflowClient(uri)
    name, number = version["model_name"], version["version"]
    run_id = comparison.mlflow_run_id
    if run_id is not None:
        for key, value in {
            "invalloc.command": "challenge",
            "invalloc.challenge.champion": champion,
            "invalloc.challenge.challenger": challenger,
            "invalloc.challenge.version": f"{name} v{number}",
            "invalloc.challenge.verdict": str(row["verdict"]),
            "invalloc.challenge.alias_set": str(better).lower(),
            **_trace_tags(demand_trace),
        }.items():
            client.set_tag(run_id, key, value[:5000])
    if better:
        client.set_registered_model_alias(name, CHALLENGER_ALIAS, number)
        for key, value in {
            "challenge_run_id": str(run_id),
            "challenge_champion": champion[:5000],
            "challenge_mean_difference": f"{float(row['mean_difference']):.6g}",
            "challenge_ci": f"[{low:.6g}, {high:.6g}]",
        }.items():
            client.set_model_version_tag(name, number, key, value)
    return {
        "champion": champion,
        "challenger": challenger,
        "scenario": comparison.scenario,
        "episodes": episodes,
        "seeds": [seed, seed + episodes - 1],
        "kpi": CHALLENGE_KPI,
        "mean_difference": float(row["mean_difference"]),
        "ci_low": low,
        "ci_high": high,
        "p_value": float(row["p_value"]),
        "verdict": str(row["verdict"]),
        "better": better,
        "alias_set": better,
        "model_name": name,
        "version": number,
        "mlflow_run_id": run_id,
        "tracking_uri": uri,
        "demand_trace": None if demand_trace is None else str(demand_trace),
    }


def _trace_tags(demand_trace: str | Path | None) -> dict[str, str]:
    """Run tags naming the demand a challenge replayed (path and sha256), if any."""
    if demand_trace is None:
        return {}
    from invalloc.digests import sha256_file

    path = Path(demand_trace).resolve()
    return {"invalloc.challenge.demand_trace": str(path), "invalloc.challenge.demand_trace_sha256": sha256_file(path)}


__all__ = ["CHALLENGER_ALIAS", "CHALLENGE_KPI", "ChallengeError", "registered_version", "run_challenge"]
