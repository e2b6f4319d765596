"""``invalloc export`` and ``invalloc rules approve``: the commands that need the tracking store.

Errors print one ``error:`` line on standard error and exit with code 2; nothing is left
half-written (the table is written into a temporary directory and moved into place).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from invalloc.console import console, fail, first_line
from invalloc.rules.table import DEFAULT_MAX_RULES

TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."
    ),
]


# Option defaults are ExtractionSettings's (not imported here, so that `invalloc --help` stays fast).
def export(
    run: Annotated[str, typer.Option("--run", help="MLflow run id of a trained policy (`invalloc train` prints it).")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the rule table into.")],
    max_rules: Annotated[int, typer.Option("--max-rules", min=1, help="Most rules in the table.")] = DEFAULT_MAX_RULES,
    scenario: Annotated[
        str | None, typer.Option("--scenario", help="Scenario file or name (default: the one logged with the run).")
    ] = None,
    iterations: Annotated[int, typer.Option("--iterations", min=1, help="DAgger iterations.")] = 4,
    episodes: Annotated[
        int, typer.Option("--episodes", min=1, help="Episodes the table rolls out per DAgger iteration.")
    ] = 20,
    teacher_episodes: Annotated[
        int,
        typer.Option("--teacher-episodes", min=0, help="Teacher episodes before the first fit (0: --episodes)."),
    ] = 120,
    validation_episodes: Annotated[
        int, typer.Option("--validation-episodes", min=0, help="Teacher episodes for choosing the iteration's table.")
    ] = 10,
    evaluation_episodes: Annotated[
        int, typer.Option("--evaluation-episodes", min=1, help="Held-out episodes for fidelity and KPI retention.")
    ] = 10,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**62, help="Seed of the first extraction episode.")] = 0,
    register: Annotated[
        str | None,
        typer.Option("--register", help="Registered model name (default: invalloc-rules-<scenario>)."),
    ] = None,
    no_register: Annotated[bool, typer.Option("--no-register", help="Do not register the table in MLflow.")] = False,
    tracking_uri: TrackingUri = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Turn a trained policy into a verified rule table (CSV, JSON, DMN 1.3) with a manifest."""
    from invalloc.config.loader import ScenarioError
    from invalloc.export import export_rule_table, summary_line
    from invalloc.export.exporter import ExportError
    from invalloc.export.extraction import ExtractionSettings
    from invalloc.rules.manifest import MANIFEST_FILE
    from invalloc.rules.table import RuleTableError
    from invalloc.sim.policy import PolicyError
    from invalloc.tracking import TrackingError

    # The exporter checks this too, but only after loading the run: refuse at once.
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_FILE).is_file())):
        fail([f"--out {out}: exists and is not a rule table directory; choose another --out"])
    try:
        settings = ExtractionSettings(
            max_rules=max_rules,
            iterations=iterations,
            episodes_per_iteration=episodes,
            teacher_episodes=teacher_episodes,
            validation_episodes=validation_episodes,
            evaluation_episodes=evaluation_episodes,
            seed=seed,
        )
        manifest = export_rule_table(
            run,
            out,
            tracking_uri,
            settings=settings,
            scenario=scenario,
            register=None if no_register else register or "",
        )
    except ScenarioError as error:
        fail(error.lines())
    except (ExportError, RuleTableError, PolicyError, TrackingError, ValueError, OSError) as error:
        fail([first_line(error)])
    except Exception as error:  # MLflow's own errors (no common base without importing it first)
        if type(error).__module__.startswith("mlflow"):
            fail([f"tracking: {first_line(error)}"])
        raise
    if as_json:
        print(json.dumps(manifest))
        return
    console.print(summary_line(out, manifest), markup=False)


def approve(
    directory: Annotated[Path, typer.Argument(help="Rule table directory.")],
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who reviewed the table.")],
    comment: Annotated[str, typer.Option("--comment", help="The review's conclusion.")],
    status: Annotated[
        str, typer.Option("--status", help="New status: approved (default), active or retired.")
    ] = "approved",
    register: Annotated[
        str | None, typer.Option("--register", help="Model name if the export did not register the table.")
    ] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Record a review: status change, audit log entry, re-hash; aliases follow: approval moves
    ``champion`` to the registered version (from ``candidate``), retirement removes it."""
    from invalloc.export.exporter import ExportError, review
    from invalloc.rules.manifest import read_manifest
    from invalloc.rules.table import RuleTableError
    from invalloc.tracking import TrackingError, resolve_tracking_uri

    try:
        manifest = read_manifest(directory)
        name = register or f"invalloc-rules-{(manifest.get('scenario') or {}).get('name', 'table')}"
        manifest = review(directory, reviewer, comment, status, resolve_tracking_uri(tracking_uri), name)
    except (ExportError, RuleTableError, TrackingError, OSError) as error:
        fail([first_line(error)])
    except Exception as error:
        if type(error).__module__.startswith("mlflow"):
            fail([f"tracking: {first_line(error)}"])
        raise
    registry = manifest.get("registry")
    console.print(
        f"{directory}: {manifest['review']['status']} by {reviewer}"
        + (f"; {registry['model_name']} v{registry['version']}" if registry else "")
        + (f" @{registry['alias']}" if registry and registry.get("alias") else ""),
        markup=False,
    )
