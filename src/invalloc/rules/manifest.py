"""A rule table directory: the table in three formats, a JSON Schema, an audit log and a manifest.

``manifest.json`` records the sha256 of every table file (``rules.csv``, ``rules.json``,
``rules.schema.json``, ``rules.dmn``), where the table came from (MLflow run, model version,
scenario digest, feature set version, extraction settings), what its outputs set
(``action_mode``: ``compact``, or ``anchored`` with the resolved ``anchor`` rule whose levels
and channel weights they multiply), how faithful it is (fidelity, KPI retention, intervention
rate), the ``precision`` its numbers are written to (per feature the thresholds' step or
significant digits, per output the values', support's; and the ``rounding_effect`` on the
states seen in extraction: :func:`~invalloc.rules.table.table_precision`; absent from tables
exported before it existed), its review (status draft → approved → active → retired,
reviewer, date, comment) and where it is registered. A directory holds exactly these files,
the manifest and ``audit_log.jsonl``: any other file makes verification fail.

**Content digest.** :func:`content_digest` is the sha256 of the manifest without its
``review`` and ``registry`` blocks, serialised as canonical JSON (keys sorted, separators
``,`` and ``:``, non-ASCII kept, as read back from ``manifest.json``). Because the manifest
holds every table file's sha256, the digest covers the three formats, the schema and every
other manifest field (fidelity, retention, scenario digest, provenance, feature and output
definitions, action mode and anchor: a table whose anchor was edited is refused like any other
edit). Only a review changes the review and registry blocks; the digest therefore
stays the same from export to retirement.

**Audit log.** ``audit_log.jsonl`` is append-only and hash-chained; every status change
(``exported`` as draft, then each ``review``: approved, active, retired) appends one line
that records

- ``previous``: the sha256 of the line before it (of nothing for the first);
- ``content_sha256``: the content digest at that moment, and ``files``: the table files' sha256;
- ``review_sha256``: the sha256 of the review block that event left, and ``registry``: the
  registry block it left.

:func:`verify_directory` — run by every load (``rules decide``/``show``/``diff``,
``simulate``/``compare --policy rules:DIR``, :func:`load_rule_table`,
:func:`~invalloc.rules.policy.load_rule_policy`) — checks the files against the manifest,
refuses files the manifest does not list, replays the log (each review an allowed step from
the status reached, each line chained to the one before) and refuses a manifest whose
content digest differs from the one the log recorded at export and at every review, or
whose review or registry block differs from what the last line left. So a table edited
after approval — even consistently in CSV, JSON and DMN, with the manifest re-hashed — is
refused everywhere, as is an edited fidelity, retention or scenario digest, or an edited
log line.

The directory is tamper-evident, not tamper-proof: someone who rewrites the whole log as
well as the files forges a consistent directory. The registered model version in MLflow
carries the content digest as its ``content_sha256`` tag (set when it is registered), which
such a forgery cannot change without write access to the tracking store; ``rules approve``
and ``rules verify --tracking-uri`` check it (:mod:`invalloc.rules.registry`).
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

from invalloc.digests import sha256_file
from invalloc.env.feature_definitions import Feature
from invalloc.rules.formats import FILE_NAMES, SCHEMA_FILE, read_csv, read_dmn, read_json
from invalloc.rules.table import TABLE_ACTION_MODES, Output, RuleTable, RuleTableError

MANIFEST_FILE = "manifest.json"
AUDIT_LOG_FILE = "audit_log.jsonl"
MANIFEST_FORMAT = "invalloc-rule-table-manifest"
#: Manifest format version written. 2: the audit log binds every status change to the content
#: digest. 3: ``action_mode`` and ``anchor`` say what the outputs set.
MANIFEST_VERSION = 3
#: Versions read: a version 2 table has no ``action_mode`` and sets the compact action.
READABLE_MANIFEST_VERSIONS = (2, 3)
#: The files a rule table consists of (all listed in the manifest with their sha256).
TABLE_FILES = (*FILE_NAMES.values(), SCHEMA_FILE)
#: Manifest blocks a review changes; everything else is covered by :func:`content_digest`.
REVIEW_BLOCKS = ("review", "registry")
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


def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def review_digest(review: dict) -> str:
    """sha256 of a manifest's review block (canonical JSON: sorted keys, no spaces)."""
    return hashlib.sha256(_canonical(review)).hexdigest()


def content_digest(manifest: dict) -> str:
    """sha256 of ``manifest`` without its ``review`` and ``registry`` blocks (canonical JSON).

    The manifest is first normalised through a JSON round trip, so the digest of the dict an
    exporter holds equals the digest of the file it wrote.
    """
    normalised = json.loads(json.dumps(manifest))
    content = {key: value for key, value in normalised.items() if key not in REVIEW_BLOCKS}
    return hashlib.sha256(_canonical(content)).hexdigest()


def append_audit(directory: Path, entry: dict, manifest: dict) -> dict:
    """Append ``entry`` to the directory's audit log, bound to the manifest as this event leaves it.

    Adds ``previous`` (the sha256 of the last line), ``content_sha256`` and ``files`` (the
    content digest and table file hashes of ``manifest``, which must already list them),
    ``review_sha256`` and ``registry``. Returns the entry written.
    """
    path = Path(directory) / AUDIT_LOG_FILE
    lines = path.read_text().splitlines() if path.is_file() else []
    previous = hashlib.sha256(lines[-1].encode()).hexdigest() if lines else AUDIT_CHAIN_START
    entry = {
        **entry,
        "previous": previous,
        "content_sha256": content_digest(manifest),
        "files": dict(manifest["files"]),
        "review_sha256": review_digest(manifest.get("review") or {}),
        "registry": manifest.get("registry"),
    }
    with open(path, "a") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
    return entry


def _moment(entry: dict) -> str:
    """When an audit entry was written, in words."""
    if entry.get("event") == "review":
        return f"when it became {entry.get('status')}"
    return "at export"


def check_review_log(directory: Path, manifest: dict) -> None:
    """Raise :class:`RuleTableError` unless the manifest agrees with the audit log.

    Replays ``audit_log.jsonl``: the first entry is ``exported`` (status ``draft``); each
    ``review`` must move from the status reached so far (its ``from``) by an allowed step;
    every entry must chain to the line before (``previous``) and record the content digest.
    The manifest's content digest must equal the digest every entry recorded, its review
    status the status reached, its review block the one the last entry hashed (and the last
    review's reviewer, date and comment), its registry block the one the last entry recorded.
    """
    directory = Path(directory)
    path = directory / AUDIT_LOG_FILE
    manifest_path = directory / MANIFEST_FILE
    review = manifest.get("review") or {}
    if not isinstance(review, dict):
        raise RuleTableError(f"{manifest_path}: review must be a JSON object")
    if not path.is_file():
        raise RuleTableError(f"{path}: missing (every exported rule table has one)")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise RuleTableError(f"{path}: cannot be read ({error})") from None
    if not lines:
        raise RuleTableError(f"{path}: empty (every exported rule table records its export)")
    digest = content_digest(manifest)
    status, last, previous_line = "draft", None, None
    for number, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise RuleTableError(f"{path}: line {number} is not JSON (the audit log was edited)") from None
        if not isinstance(entry, dict):
            raise RuleTableError(f"{path}: line {number} is not a JSON object (the audit log was edited)")
        expected = hashlib.sha256(previous_line.encode()).hexdigest() if number > 1 else AUDIT_CHAIN_START
        if entry.get("previous") != expected:
            raise RuleTableError(
                f"{path}: line {number} does not chain to the line before it (an entry was edited or removed)"
            )
        if "content_sha256" not in entry:
            raise RuleTableError(
                f"{path}: line {number} records no content digest (written before approvals were bound to "
                f"the content); re-export the table"
            )
        if number == 1:
            if entry.get("event") != "exported" or entry.get("status", "draft") != "draft":
                raise RuleTableError(f"{path}: line 1 is not the export (the audit log was edited)")
        elif entry.get("event") == "review":
            if entry.get("from") != status or entry.get("status") not in allowed_transitions(status):
                raise RuleTableError(
                    f"{path}: line {number} moves the review from {entry.get('from')!r} to {entry.get('status')!r}, "
                    f"but the log had reached {status!r}"
                )
            status = entry["status"]
        else:
            raise RuleTableError(f"{path}: line {number} is neither a review nor the export (the log was edited)")
        last, previous_line = entry, line
    assert last is not None
    for number in range(len(lines), 0, -1):  # the latest record first: "when it became approved"
        entry = json.loads(lines[number - 1])
        if entry["content_sha256"] != digest:
            recorded = entry.get("files") if isinstance(entry.get("files"), dict) else {}
            changed = [name for name in TABLE_FILES if recorded.get(name) != manifest["files"].get(name)]
            what = f"{', '.join(changed)} changed" if changed else "manifest fields changed"
            raise RuleTableError(
                f"{manifest_path}: content sha256 {digest[:12]}… differs from the {entry['content_sha256']!s:.12}… "
                f"{AUDIT_LOG_FILE} recorded {_moment(entry)} (line {number}; {what}); the table was edited after "
                f"it was recorded — re-export it"
            )
    claimed = review.get("status", "draft")
    if claimed != status:
        raise RuleTableError(
            f"{manifest_path}: review status {claimed!r} disagrees with {AUDIT_LOG_FILE} "
            f"(which reaches {status!r}); change the status only with `invalloc rules approve`"
        )
    in_log = {"reviewer": last.get("reviewer"), "date": last.get("time"), "comment": last.get("comment")}
    if last.get("review_sha256") != review_digest(review) or (
        last.get("event") == "review" and any(review.get(key) != value for key, value in in_log.items())
    ):
        raise RuleTableError(
            f"{manifest_path}: review block (reviewer, date, comment) differs from the one "
            f"{AUDIT_LOG_FILE} recorded; change it only with `invalloc rules approve`"
        )
    if last.get("registry") != manifest.get("registry"):
        raise RuleTableError(
            f"{manifest_path}: registry block (model name, version, alias) differs from the one "
            f"{AUDIT_LOG_FILE} recorded; it changes only with `invalloc export` and `invalloc rules approve`"
        )


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
    "action_mode": (str,),
    "anchor": (dict, type(None)),
    "precision": (dict, type(None)),
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
    return _precision_problem(manifest) or _action_problem(manifest)


def _precision_problem(manifest: dict) -> str | None:
    """The first malformed part of the ``precision`` block (``field precision…: …``), or None.

    Each feature and output states ``{"step": s}`` (s > 0) or ``{"significant_digits": d}``
    (d ≥ 1); tables exported before the block existed have none.
    """
    precision = manifest.get("precision")
    if precision is None:
        return None
    entries = [("support", precision.get("support"))] if "support" in precision else []
    for section in ("features", "outputs"):
        block = precision.get(section, {})
        if not isinstance(block, dict):
            return f"field precision.{section} must be an object (name → step or significant_digits)"
        entries += [(f"{section}.{name}", value) for name, value in block.items()]
    for where, value in entries:
        step = value.get("step") if isinstance(value, dict) else None
        digits = value.get("significant_digits") if isinstance(value, dict) else None
        valid_step = isinstance(step, int | float) and not isinstance(step, bool) and 0 < step < float("inf")
        valid_digits = isinstance(digits, int) and not isinstance(digits, bool) and 1 <= digits <= 17
        if not (valid_step or valid_digits):
            return f'field precision.{where} must be {{"step": a positive number}} or {{"significant_digits": 1–17}}'
    return None


def _action_problem(manifest: dict) -> str | None:
    """The first problem with ``action_mode`` and ``anchor`` (``field …: …``), or None.

    Checks the anchor's shape only (a rule name and its parameters as plain values); whether
    the rule exists and accepts them is checked when the table first acts on a scenario, as
    the simulator is not loaded to read or decide with a table.
    """
    mode = manifest.get("action_mode", "compact")
    anchor = manifest.get("anchor")
    if mode not in TABLE_ACTION_MODES:
        return f"field action_mode: {mode!r}, expected {' or '.join(TABLE_ACTION_MODES)}"
    if mode == "compact":
        return None if anchor is None else "field anchor: only action_mode 'anchored' has one (it must be null)"
    if manifest.get("format_version") == 2:
        return "field action_mode: format_version 2 tables set the compact action only"
    if anchor is None:
        return "field anchor: action_mode 'anchored' needs the rule its outputs correct"
    if not isinstance(anchor.get("policy"), str) or not anchor["policy"]:
        return "field anchor.policy must be the name of a rule-based policy"
    params = anchor.get("params", {})
    if not isinstance(params, dict) or not all(
        isinstance(value, str | int | float) and not isinstance(value, bool) for value in params.values()
    ):
        return "field anchor.params must be an object of single values"
    if not isinstance(anchor.get("spec", ""), str):
        return "field anchor.spec must be a string"
    return None


def verify_directory(directory: Path) -> dict:
    """Verify a rule table directory's files, manifest and audit log; return the manifest.

    Checks, in order: the manifest's format version; every table file listed, present and
    matching its sha256; no other file in the directory (besides the manifest and the audit
    log); the audit log against the manifest (:func:`check_review_log`: chain, lifecycle,
    content digest, review and registry blocks).

    :raises RuleTableError: the first problem, one line naming the file.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    manifest_path = directory / MANIFEST_FILE
    if manifest.get("format_version") not in READABLE_MANIFEST_VERSIONS:
        readable = " and ".join(map(str, READABLE_MANIFEST_VERSIONS))
        raise RuleTableError(
            f"{manifest_path}: format_version {manifest.get('format_version')!r}, this version reads "
            f"{readable} (earlier tables do not bind their review to the content); re-export the table"
        )
    files: dict = manifest["files"]
    for name in TABLE_FILES:
        if name not in files:
            raise RuleTableError(f"{manifest_path}: lists no hash for {name}")
    for name, expected in files.items():
        if name not in TABLE_FILES:
            raise RuleTableError(f"{manifest_path}: lists {name!r}, which is not a rule table file")
        path = directory / name
        if not path.is_file():
            raise RuleTableError(f"{path}: missing (listed in the manifest)")
        if sha256_file(path) != expected:
            raise RuleTableError(f"{path}: sha256 does not match the manifest (the file was changed)")
    for path in sorted(directory.iterdir()):
        if path.name not in files and path.name not in (MANIFEST_FILE, AUDIT_LOG_FILE):
            raise RuleTableError(
                f"{path}: not listed in the manifest (a rule table directory holds only its own files)"
            )
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
        "action_mode": manifest.get("action_mode", "compact"),
        "anchor": manifest.get("anchor"),
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

    from invalloc.rules.table import boundary_grid, precision_problem

    directory = Path(directory)
    tables = {fmt: load_rule_table(directory, fmt) for fmt in ("json", "csv", "dmn")}
    reference, manifest = tables["json"]
    if manifest.get("precision") is not None:
        for fmt, (table, _) in tables.items():
            problem = precision_problem(table, manifest["precision"], str(directory / FILE_NAMES[fmt]))
            if problem:
                raise RuleTableError(f"{problem} (manifest.json field precision)")
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
    """Hash the table files of ``directory`` (:data:`TABLE_FILES`) into ``manifest['files']`` and write it.

    The audit log is not listed: it changes at every review and is verified by its chain.
    """
    directory = Path(directory)
    manifest["files"] = {name: sha256_file(directory / name) for name in TABLE_FILES if (directory / name).is_file()}
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
