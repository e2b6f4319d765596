"""A rule table directory: the table in three formats, a JSON Schema, an audit log and a manifest.

``manifest.json`` records the sha256 of every other file, where the table came from (MLflow
run, model version, scenario hash, feature set version, extraction settings), how faithful
it is (fidelity, KPI retention, intervention rate) and its review (status draft → approved →
active → retired, reviewer, date, comment). :func:`load_rule_table` verifies every hash
before it reads anything and refuses a directory whose files do not match.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from invalloc.rules.features import Feature
from invalloc.rules.formats import FILE_NAMES, SCHEMA_FILE, read_csv, read_dmn, read_json
from invalloc.rules.table import Output, RuleTable, RuleTableError

MANIFEST_FILE = "manifest.json"
AUDIT_LOG_FILE = "audit_log.jsonl"
MANIFEST_FORMAT = "invalloc-rule-table-manifest"
#: Review statuses in lifecycle order; a table moves forward one step at a time (or is retired).
STATUSES = ("draft", "approved", "active", "retired")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(directory: Path) -> dict:
    """The manifest of a rule table directory (not yet verified)."""
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise RuleTableError(f"{path}: missing (not an exported rule table directory)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RuleTableError(f"{path}: not valid JSON ({error})") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or not isinstance(manifest.get("files"), dict)
    ):
        raise RuleTableError(f"{path}: not an invalloc rule table manifest")
    return manifest


def verify_directory(directory: Path) -> dict:
    """Check every file listed in the manifest against its sha256; return the manifest.

    Raises :class:`RuleTableError` naming the first missing or changed file, or a table
    file present in the directory but not in the manifest.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    files: dict = manifest["files"]
    for name in [*FILE_NAMES.values(), SCHEMA_FILE]:
        if name not in files:
            raise RuleTableError(f"{directory / MANIFEST_FILE}: lists no hash for {name}")
    for name, expected in files.items():
        path = directory / name
        if Path(name).name != name:
            raise RuleTableError(f"{directory / MANIFEST_FILE}: file name {name!r} is not a plain file name")
        if not path.is_file():
            raise RuleTableError(f"{path}: missing (listed in the manifest)")
        if sha256_file(path) != expected:
            raise RuleTableError(f"{path}: sha256 does not match the manifest (the file was changed)")
    return manifest


def definitions(manifest: dict) -> tuple[list[Feature], list[Output]]:
    """Feature and output definitions recorded in the manifest."""
    try:
        features = [Feature(f["name"], f["unit"], f["description"]) for f in manifest["feature_set"]["features"]]
        outputs = [
            Output(o["name"], o["unit"], o["description"], o["action"], o["transform"], float(o["step"]))
            for o in manifest["outputs"]
        ]
    except (KeyError, TypeError) as error:
        raise RuleTableError(f"{MANIFEST_FILE}: feature or output definitions malformed ({error})") from None
    return features, outputs


def load_rule_table(directory: Path, fmt: str = "json") -> tuple[RuleTable, dict]:
    """Verify ``directory`` and read its table in format ``fmt`` (``json``, ``csv`` or ``dmn``).

    :returns: the checked table (metadata from the manifest) and the manifest.
    :raises RuleTableError: a missing or tampered file, a malformed, overlapping or
        incomplete table, or a table whose names differ from the manifest's.
    """
    if fmt not in FILE_NAMES:
        raise RuleTableError(f"format {fmt!r}: choose json, csv or dmn")
    directory = Path(directory)
    manifest = verify_directory(directory)
    features, outputs = definitions(manifest)
    path = directory / FILE_NAMES[fmt]
    if fmt == "json":
        table = read_json(path)
        if table.feature_names != [f.name for f in features] or table.output_names != [o.name for o in outputs]:
            raise RuleTableError(f"{path}: features or outputs differ from the manifest")
    elif fmt == "csv":
        table = read_csv(path, features, outputs)
    else:
        table = read_dmn(path, features, outputs)
    table.metadata = {
        "name": manifest.get("name", directory.name),
        "scenario": manifest.get("scenario", {}).get("name", ""),
        "scenario_digest": manifest.get("scenario", {}).get("digest", ""),
        "feature_set_version": manifest.get("feature_set", {}).get("version", ""),
    }
    return table, manifest


def verify_rule_table(directory: Path) -> dict:
    """Verify a directory completely: hashes, each format a partition, all formats deciding alike.

    The formats are compared on :func:`~invalloc.rules.table.boundary_grid` of the JSON table
    (every rule boundary, from both sides).

    :returns: ``{"manifest", "table" (the JSON one), "states" (the grid)}``.
    :raises RuleTableError: the first problem, in one line naming the file.
    """
    import numpy as np

    from invalloc.rules.table import boundary_grid

    directory = Path(directory)
    tables = {fmt: load_rule_table(directory, fmt) for fmt in ("json", "csv", "dmn")}
    reference, manifest = tables["json"]
    states = boundary_grid(reference)
    expected = reference.decide(states)
    for fmt, (table, _) in tables.items():
        path = directory / FILE_NAMES[fmt]
        if table.rule_ids != reference.rule_ids or not np.array_equal(table.decide(states), expected):
            raise RuleTableError(f"{path}: decides differently from {FILE_NAMES['json']}")
        if not np.array_equal(table.values, reference.values):
            raise RuleTableError(f"{path}: outputs differ from {FILE_NAMES['json']}")
    return {"manifest": manifest, "table": reference, "states": states}


def write_manifest(directory: Path, manifest: dict) -> dict:
    """Hash every file of ``directory`` except the manifest into ``manifest['files']`` and write it."""
    directory = Path(directory)
    manifest["files"] = {
        p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST_FILE
    }
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest


@contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """A temporary directory beside ``target`` that replaces it only if the block succeeds.

    Nothing half-written is ever left at ``target``: on an error the temporary directory is
    removed and ``target`` stays as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    backup = None
    if target.exists():
        backup = target.parent / f".{target.name}.old"
        shutil.rmtree(backup, ignore_errors=True)
        os.replace(target, backup)
    os.replace(staging, target)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
