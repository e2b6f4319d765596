"""A rule table directory: the table in three formats, a JSON Schema, an audit log and a manifest.

``manifest.json`` records the sha256 of every other file, where the table came from (MLflow
run, model version, scenario hash, feature set version, extraction settings), how faithful
it is (fidelity, KPI retention, intervention rate) and its review (status draft → approved →
active → retired, reviewer, date, comment). :func:`load_rule_table` verifies every hash
before it reads anything and refuses a directory whose files do not match.

``audit_log.jsonl`` is append-only and hash-chained: every entry records the sha256 of the
line before it (``previous``) and of the manifest's review block as that event left it
(``review_sha256``). :func:`verify_directory` replays the log — each review must start from
the status the log reached and be an allowed step — and refuses a manifest whose review
(status, reviewer, date, comment) differs from what the log's last entry says, so editing
the review fields by hand, or an entry in the middle of the log, is detected.
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

from invalloc.env.features import Feature
from invalloc.rules.formats import FILE_NAMES, SCHEMA_FILE, read_csv, read_dmn, read_json
from invalloc.rules.table import Output, RuleTable, RuleTableError

MANIFEST_FILE = "manifest.json"
AUDIT_LOG_FILE = "audit_log.jsonl"
MANIFEST_FORMAT = "invalloc-rule-table-manifest"
#: Largest manifest read (an exported one is a few kB).
MAX_MANIFEST_BYTES = 10 * 1024 * 1024
#: Review statuses in lifecycle order; a table moves forward one step at a time (or is retired).
STATUSES = ("draft", "approved", "active", "retired")
#: ``previous`` of the first audit entry: the sha256 of nothing.
AUDIT_CHAIN_START = hashlib.sha256(b"").hexdigest()


def allowed_transitions(status: str) -> set[str]:
    """Statuses a table in ``status`` may move to: the next one in :data:`STATUSES`, or retired."""
    if status not in STATUSES or status == "retired":
        return set()
    return {STATUSES[STATUSES.index(status) + 1], "retired"}


def review_digest(review: dict) -> str:
    """sha256 of a manifest's review block (canonical JSON: sorted keys, no spaces)."""
    text = json.dumps(review, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def append_audit(directory: Path, entry: dict, review: dict) -> dict:
    """Append ``entry`` to the directory's audit log, chained to the last line and to ``review``
    (the manifest's review block after this event); returns the entry written."""
    path = Path(directory) / AUDIT_LOG_FILE
    lines = path.read_text().splitlines() if path.is_file() else []
    previous = hashlib.sha256(lines[-1].encode()).hexdigest() if lines else AUDIT_CHAIN_START
    entry = {**entry, "previous": previous, "review_sha256": review_digest(review)}
    with open(path, "a") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
    return entry


def check_review_log(directory: Path, manifest: dict) -> None:
    """Raise :class:`RuleTableError` unless the manifest's review agrees with the audit log.

    Replays ``audit_log.jsonl``: ``exported`` starts at ``draft``; each ``review`` must move
    from the status reached so far (its ``from``) by an allowed step. Entries carrying a
    ``previous`` hash must chain to the line before, and once the chain starts every later
    entry must carry it. The manifest's review status must be the status reached; its review
    block must hash to the last entry's ``review_sha256`` (or, for a log written before
    hashing, match the last review's reviewer, date and comment). Without a log the review
    must be ``draft``.
    """
    directory = Path(directory)
    path = directory / AUDIT_LOG_FILE
    review = manifest.get("review") or {}
    claimed = review.get("status", "draft")
    lines = path.read_text().splitlines() if path.is_file() else []
    status, last, chained = "draft", None, False
    previous_line = None
    for number, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise RuleTableError(f"{path}: line {number} is not JSON (the audit log was edited)") from None
        if not isinstance(entry, dict):
            raise RuleTableError(f"{path}: line {number} is not a JSON object (the audit log was edited)")
        if "previous" in entry or chained:
            expected = hashlib.sha256(previous_line.encode()).hexdigest() if number > 1 else AUDIT_CHAIN_START
            if entry.get("previous") != expected:
                raise RuleTableError(
                    f"{path}: line {number} does not chain to the line before it (an entry was edited or removed)"
                )
            chained = True
        if entry.get("event") == "exported":
            status = entry.get("status", "draft")
        elif entry.get("event") == "review":
            if entry.get("from") != status or entry.get("status") not in allowed_transitions(status):
                raise RuleTableError(
                    f"{path}: line {number} moves the review from {entry.get('from')!r} to {entry.get('status')!r}, "
                    f"but the log had reached {status!r}"
                )
            status = entry["status"]
        last, previous_line = entry, line
    if claimed != status:
        raise RuleTableError(
            f"{directory / MANIFEST_FILE}: review status {claimed!r} disagrees with {AUDIT_LOG_FILE} "
            f"(which reaches {status!r}); change the status only with `invalloc rules approve`"
        )
    if last is None:
        return
    if "review_sha256" in last:
        if last["review_sha256"] != review_digest(review):
            raise RuleTableError(
                f"{directory / MANIFEST_FILE}: review block (reviewer, date, comment) differs from the one "
                f"{AUDIT_LOG_FILE} recorded; change it only with `invalloc rules approve`"
            )
    elif last.get("event") == "review":
        recorded = {"reviewer": last.get("reviewer"), "date": last.get("time"), "comment": last.get("comment")}
        if any(review.get(key) != value for key, value in recorded.items()):
            raise RuleTableError(
                f"{directory / MANIFEST_FILE}: review block (reviewer, date, comment) differs from the last review "
                f"in {AUDIT_LOG_FILE}; change it only with `invalloc rules approve`"
            )


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
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise RuleTableError(f"{path}: larger than the {MAX_MANIFEST_BYTES // 2**20} MB a manifest may hold")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RuleTableError(f"{path}: not valid JSON ({error})") from None
    except RecursionError:
        raise RuleTableError(f"{path}: not valid JSON (nested too deeply)") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or not isinstance(manifest.get("files"), dict)
    ):
        raise RuleTableError(f"{path}: not an invalloc rule table manifest")
    problem = _manifest_shape_problem(manifest)
    if problem:
        raise RuleTableError(f"{path}: {problem}")
    return manifest


#: Type of each top-level manifest field a reader uses (None allowed where the exporter writes null).
_MANIFEST_FIELDS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "scenario": (dict,),
    "feature_set": (dict,),
    "outputs": (list,),
    "review": (dict,),
    "fidelity": (dict, type(None)),
    "kpi_retention": (dict, type(None)),
    "intervention_rate": (int, float, type(None)),
    "source": (dict, type(None)),
    "registry": (dict, type(None)),
}


def _manifest_shape_problem(manifest: dict) -> str | None:
    """The first manifest field of the wrong type (``field: must be …``), or None."""
    names = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}
    for key, kinds in _MANIFEST_FIELDS.items():
        if key in manifest and (not isinstance(manifest[key], kinds) or isinstance(manifest[key], bool)):
            expected = " or ".join(dict.fromkeys(names.get(kind, "null") for kind in kinds))
            return f"field {key} must be {expected} (got {type(manifest[key]).__name__})"
    for name, digest in manifest["files"].items():
        if not isinstance(digest, str):
            return f"field files.{name} must be a sha256 string (got {type(digest).__name__})"
    for key in ("name", "digest"):
        if key in manifest.get("scenario", {}) and not isinstance(manifest["scenario"][key], str):
            return f"field scenario.{key} must be a string"
    features = manifest.get("feature_set", {}).get("features", [])
    if not isinstance(features, list) or not all(isinstance(f, dict) for f in features):
        return "field feature_set.features must be a list of objects"
    if not all(isinstance(o, dict) for o in manifest.get("outputs", [])):
        return "field outputs must be a list of objects"
    for section in ("review", "fidelity", "kpi_retention"):
        block = manifest.get(section) or {}
        for key, value in block.items():
            if isinstance(value, dict | list) and section != "kpi_retention":
                return f"field {section}.{key} must be a single value"
    return None


def verify_directory(directory: Path) -> dict:
    """Check every file listed in the manifest against its sha256 and the review against the
    audit log (:func:`check_review_log`); return the manifest.

    Raises :class:`RuleTableError` naming the first missing or changed file, a table file
    the manifest lists no hash for, or a review that disagrees with the audit log.
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
    if (directory / AUDIT_LOG_FILE).is_file() and AUDIT_LOG_FILE not in files:
        raise RuleTableError(f"{directory / MANIFEST_FILE}: lists no hash for {AUDIT_LOG_FILE}")
    check_review_log(directory, manifest)
    return manifest


def definitions(manifest: dict) -> tuple[list[Feature], list[Output]]:
    """Feature and output definitions recorded in the manifest."""
    try:
        features = [Feature(f["name"], f["unit"], f["description"]) for f in manifest["feature_set"]["features"]]
        outputs = [
            Output(o["name"], o["unit"], o["description"], o["action"], o["transform"], float(o["step"]))
            for o in manifest["outputs"]
        ]
    except (KeyError, TypeError, ValueError) as error:
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
