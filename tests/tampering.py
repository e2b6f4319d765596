"""What an attacker with write access to a rule table directory can do (for the tampering tests)."""

from __future__ import annotations

import json
from pathlib import Path

from invalloc.rules.manifest import AUDIT_LOG_FILE, MANIFEST_FILE, append_audit, write_manifest

#: Fields :func:`invalloc.rules.manifest.append_audit` adds to bind an entry to the directory.
_BOUND = ("previous", "content_sha256", "files", "review_sha256", "registry")


def rehash(directory: Path, **fields) -> dict:
    """Re-hash the table files into the manifest (after editing them), setting ``fields`` too."""
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    manifest.update(fields)
    return write_manifest(directory, manifest)


def forge_audit_log(directory: Path) -> None:
    """Rewrite the whole audit log, every line re-chained and bound to the manifest as it is now:
    the most an attacker can do without access to the tracking store."""
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    path = directory / AUDIT_LOG_FILE
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    path.unlink()
    for entry in entries:
        append_audit(directory, {k: v for k, v in entry.items() if k not in _BOUND}, manifest)


def incomplete_copy(source: Path, target: Path) -> Path:
    """A copy of the table ``source`` with its last CSV rule removed, the manifest re-hashed and
    the audit log forged: incomplete, yet consistent to every hash an attacker can rewrite."""
    import shutil

    shutil.copytree(source, target)
    lines = (target / "rules.csv").read_text().splitlines()
    (target / "rules.csv").write_text("\n".join(lines[:-1]) + "\n")
    rehash(target)
    forge_audit_log(target)
    return target


def tree(directory: Path) -> dict[str, bytes]:
    """Every file's bytes, to check that a refused command changed nothing."""
    return {p.name: p.read_bytes() for p in sorted(Path(directory).iterdir())}
