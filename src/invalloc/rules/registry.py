"""The MLflow registry as the anchor of a rule table's content, and rule tables loaded from it
(imports MLflow only when called).

**Content anchor.** Registering a table (at export, or at its approval) tags the model version
``content_sha256`` with the table's content digest
(:func:`~invalloc.rules.manifest.content_digest`), which no review changes. A directory forged
consistently — files, manifest and the whole audit log rewritten — still verifies on its own;
it does not match this tag, which only someone with write access to the tracking store can
change. ``rules approve`` and ``rules verify --tracking-uri`` check it
(:func:`check_registered_content`); a table loaded from the registry is checked the same way
(:func:`load_registered_table`).

**Registered tables are models.** A registered version is a pyfunc model
(:mod:`invalloc.rules.pyfunc`) whose version (and export run) carries the tag
``invalloc.kind = rule_table``: ``simulate``/``compare --policy models:/NAME@ALIAS`` tell it from
a trained agent by that tag (:func:`is_registered_rule_table`) and build a
:class:`~invalloc.rules.policy.RuleTablePolicy` from its verified files
(:func:`load_registered_policy`).

**One version per content.** :func:`find_version` finds the version of a registered model that
holds a content digest, so exporting the same run with the same settings again registers
nothing new.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invalloc.rules.manifest import MANIFEST_FILE
from invalloc.rules.table import RuleTable, RuleTableError

if TYPE_CHECKING:
    from invalloc.rules.policy import RuleTablePolicy

#: Model version tag holding the content digest of the registered table.
CONTENT_TAG = "content_sha256"
#: Tag of a rule table's model version and export run (value :data:`RULE_TABLE_KIND`).
KIND_TAG = "invalloc.kind"
RULE_TABLE_KIND = "rule_table"
#: Model version tag holding the review status (draft, approved, active, retired).
STATUS_TAG = "review_status"
#: Model version tags naming the scenario (name and digest) the table was extracted on.
SCENARIO_TAG = "invalloc.scenario"
SCENARIO_DIGEST_TAG = "invalloc.scenario_hash"
#: Registry aliases of the lifecycle: an exported table is the ``candidate``; an approved one the ``champion``.
CANDIDATE, CHAMPION = "candidate", "champion"
#: URI prefixes of registered or logged models.
MODEL_URI_PREFIXES = ("models:/", "runs:/")


def check_registered_content(registry: dict, tracking_uri: str, digest: str, directory: Path) -> None:
    """The registered model version named by the manifest's ``registry`` block must carry ``digest``.

    :raises RuleTableError: a malformed registry block, or a version holding other content.
    :raises TrackingError: the store cannot be reached (MLflow's own errors pass through).
    """
    import mlflow

    from invalloc.tracking import configure_tracking

    manifest_path = Path(directory) / MANIFEST_FILE
    try:
        name, number = str(registry["model_name"]), str(registry["version"])
    except (KeyError, TypeError):
        raise RuleTableError(f"{manifest_path}: registry block malformed") from None
    version = mlflow.MlflowClient(configure_tracking(tracking_uri)).get_model_version(name, number)
    recorded = version.tags.get(CONTENT_TAG)
    if recorded != digest:
        raise RuleTableError(
            f"{manifest_path}: registered version {name} v{number} holds content {str(recorded)[:12]}…, "
            f"this table is {digest[:12]}…; export the table again"
        )


def find_version(client: Any, model_name: str, digest: str) -> Any | None:
    """The newest version of ``model_name`` tagged ``content_sha256 = digest``, or None
    (also when the model is not registered yet)."""
    escaped = model_name.replace("'", "\\'")
    versions = []
    token = None
    while True:
        page = client.search_model_versions(f"name = '{escaped}'", max_results=1000, page_token=token)
        versions += [v for v in page if v.name == model_name and v.tags.get(CONTENT_TAG) == digest]
        token = page.token
        if not token:
            break
    return max(versions, key=lambda v: int(v.version), default=None)


def _resolve(client: Any, model_uri: str) -> tuple[str, str] | None:
    """``(name, version)`` of a ``models:/NAME@ALIAS`` / ``models:/NAME/VERSION`` URI; None for other URIs."""
    from mlflow.store.artifact.utils.models import get_model_name_and_version

    if not model_uri.startswith("models:/"):
        return None
    resolved = get_model_name_and_version(client, model_uri)
    return None if len(resolved) == 1 else (str(resolved[0]), str(resolved[1]))


def is_registered_rule_table(model_uri: str, tracking_uri: str | None = None) -> bool:
    """Whether ``model_uri`` (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN/PATH``)
    names a rule table: its model version, or the run that logged it, is tagged
    ``invalloc.kind = rule_table``. False for anything that cannot be looked up (the loader of
    trained agents then reports why)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from invalloc.tracking import TrackingError, configure_tracking

    if not model_uri.startswith(MODEL_URI_PREFIXES):
        return False
    try:
        client = mlflow.MlflowClient(configure_tracking(tracking_uri, must_exist=True))
        resolved = _resolve(client, model_uri)
        if resolved is not None:
            return client.get_model_version(*resolved).tags.get(KIND_TAG) == RULE_TABLE_KIND
        if model_uri.startswith("runs:/"):
            run_id = model_uri.removeprefix("runs:/").split("/", 1)[0]
            return client.get_run(run_id).data.tags.get(KIND_TAG) == RULE_TABLE_KIND
    except (MlflowException, TrackingError, OSError, ValueError):
        return False
    return False


def load_registered_table(model_uri: str, tracking_uri: str | None = None) -> tuple[RuleTable, dict]:
    """The rule table a registered (or logged) rule table model holds, verified.

    The version an alias points at is resolved once and downloaded by number (an alias moved
    meanwhile cannot mix versions). The downloaded directory is verified completely
    (:func:`~invalloc.rules.manifest.load_rule_table`); its content digest must equal the one
    the model recorded when it was logged and, for a registered version, the version's
    ``content_sha256`` tag. Nothing is unpickled; no code from the model is run.

    :raises RuleTableError: one line: the model cannot be found or downloaded, is not a rule
        table, or holds a missing, extra or tampered file or other content than registered.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from invalloc.console import first_line
    from invalloc.rules.manifest import content_digest, load_rule_table
    from invalloc.rules.pyfunc import model_digest, table_directory
    from invalloc.tracking import TrackingError, configure_tracking, quiet_mlflow

    try:
        uri = configure_tracking(tracking_uri, must_exist=True)
    except TrackingError as error:
        raise RuleTableError(str(error)) from None
    with tempfile.TemporaryDirectory(prefix="invalloc-rules-") as download:
        try:
            client = mlflow.MlflowClient(uri)
            resolved = _resolve(client, model_uri)
            registered = None
            pinned = model_uri
            if resolved is not None:
                registered = client.get_model_version(*resolved)
                pinned = f"models:/{resolved[0]}/{resolved[1]}"
                if registered.tags.get(KIND_TAG) != RULE_TABLE_KIND:
                    raise RuleTableError(f"{model_uri}: not a rule table (its version has no {KIND_TAG} tag)")
            with quiet_mlflow():
                folder = Path(
                    mlflow.artifacts.download_artifacts(artifact_uri=pinned, tracking_uri=uri, dst_path=download)
                )
        except MlflowException as error:
            raise RuleTableError(f"{model_uri}: cannot be loaded from {uri} ({first_line(error)})") from None
        except OSError as error:
            raise RuleTableError(f"{model_uri}: cannot be loaded from {uri} ({error})") from None
        try:
            table, manifest = load_rule_table(table_directory(folder))
        except RuleTableError as error:
            where = str(error).replace(str(folder), model_uri, 1)
            raise RuleTableError(where) from None
        digest = content_digest(manifest)
        recorded = model_digest(folder)
        if recorded is not None and recorded != digest:
            raise RuleTableError(
                f"{model_uri}: its table's content {digest[:12]}… differs from the {recorded[:12]}… "
                f"the model recorded when it was logged"
            )
        if registered is not None and registered.tags.get(CONTENT_TAG) != digest:
            raise RuleTableError(
                f"{model_uri}: registered version {registered.name} v{registered.version} holds content "
                f"{str(registered.tags.get(CONTENT_TAG))[:12]}…, its files are {digest[:12]}…"
            )
    return table, manifest


def load_registered_policy(model_uri: str, tracking_uri: str | None = None) -> RuleTablePolicy:
    """A :class:`~invalloc.rules.policy.RuleTablePolicy` of the rule table model ``model_uri``
    (:func:`load_registered_table`), named after the URI without its ``models:/`` prefix."""
    from invalloc.rules.policy import RuleTablePolicy

    table, manifest = load_registered_table(model_uri, tracking_uri)
    digest = (manifest.get("scenario") or {}).get("digest", "")
    return RuleTablePolicy(table, digest, name=model_uri.split(":/", 1)[1].lstrip("/"))
