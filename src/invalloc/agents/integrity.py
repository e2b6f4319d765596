"""The sha256 of every artifact a run logs, kept in the tracking store and checked before loading.

A run's artifacts (``config/``, ``checkpoint/``, ``best/``, the pyfunc model's policy folder,
``evaluation_episodes.csv``) may live in a different store from its params and tags (a
bucket, a shared folder). When training logs an artifact folder it also sets the run tag
``invalloc.sha256.<artifact path>`` to the JSON map ``{relative file name: sha256}``; before
anything downloaded is read, :func:`verify_hashes` compares the files with that map and
refuses a changed, missing or additional file. Loading never unpickles anything either way
(:mod:`invalloc.agents.learned`), so a planted file cannot run code; the hashes make sure it
cannot change what a policy does unnoticed either.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from invalloc.digests import sha256_file

#: Run tag prefix; the rest of the key is the artifact path (``best``, ``checkpoint``, ...).
HASH_TAG_PREFIX = "invalloc.sha256."


class ArtifactIntegrityError(ValueError):
    """A downloaded artifact does not match the sha256 recorded when it was logged (one line)."""


def hashes(local: Path) -> dict[str, str]:
    """``{relative posix path: sha256}`` of every file under ``local`` (a folder), or of ``local`` (a file)."""
    local = Path(local)
    if local.is_file():
        return {local.name: sha256_file(local)}
    return {p.relative_to(local).as_posix(): sha256_file(p) for p in sorted(local.rglob("*")) if p.is_file()}


def tag_key(artifact_path: str) -> str:
    return HASH_TAG_PREFIX + artifact_path


def log_with_hashes(client: Any, run_id: str, local: Path, artifact_path: str | None = None) -> None:
    """Log a folder (as ``artifact_path``) or a file (at the root) and record its files' sha256 as a run tag."""
    local = Path(local)
    if local.is_file():
        client.log_artifact(run_id, str(local))
        key = local.name
    else:
        key = artifact_path or local.name
        client.log_artifacts(run_id, str(local), key)
    client.set_tag(run_id, tag_key(key), json.dumps(hashes(local), sort_keys=True, separators=(",", ":")))


def recorded_hashes(run: Any, artifact_path: str) -> dict[str, str] | None:
    """The map recorded for ``artifact_path`` on ``run`` (an MLflow Run), or None."""
    text = run.data.tags.get(tag_key(artifact_path))
    if text is None:
        return None
    try:
        recorded = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return recorded if isinstance(recorded, dict) else {}


def verify_hashes(run: Any, artifact_path: str, local: Path) -> None:
    """Refuse ``local`` (the download of ``artifact_path``) unless it matches the run's recorded map.

    :raises ArtifactIntegrityError: no map recorded, or a file changed, missing or not recorded.
    """
    run_id = run.info.run_id
    expected = recorded_hashes(run, artifact_path)
    if expected is None:
        raise ArtifactIntegrityError(
            f"run {run_id}: no sha256 recorded for its {artifact_path} artifacts (logged by an older invalloc, "
            f"or the tag was removed); it is not loaded — train it again"
        )
    actual = hashes(Path(local))
    for name in sorted(set(expected) | set(actual)):
        where = f"run {run_id} artifact {artifact_path}/{name}" if Path(local).is_dir() else f"run {run_id} {name}"
        if name not in actual:
            raise ArtifactIntegrityError(f"{where}: missing (its sha256 was recorded when it was logged)")
        if name not in expected:
            raise ArtifactIntegrityError(f"{where}: not logged by invalloc (no sha256 recorded); refusing to load")
        if actual[name] != expected[name]:
            raise ArtifactIntegrityError(
                f"{where}: sha256 does not match the one recorded when it was logged (the artifact store was changed)"
            )
