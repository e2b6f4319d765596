"""The MLflow registry as the anchor of a rule table's content (imports MLflow only when called).

Registering a table (at export, or at its approval) tags the model version ``content_sha256``
with the table's content digest (:func:`~invalloc.rules.manifest.content_digest`), which no
review changes. A directory
forged consistently — files, manifest and the whole audit log rewritten — still verifies on
its own; it does not match this tag, which only someone with write access to the tracking
store can change. ``rules approve`` and ``rules verify --tracking-uri`` check it.
"""

from __future__ import annotations

from pathlib import Path

from invalloc.rules.manifest import MANIFEST_FILE
from invalloc.rules.table import RuleTableError

#: Model version tag holding the content digest of the registered table.
CONTENT_TAG = "content_sha256"


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
