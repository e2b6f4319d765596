"""Content digests shared by every layer (standard library only).

Used where a file's bytes are bound to a record: artifact hashes of training runs
(:mod:`invalloc.agents.integrity`), referenced scenario files logged with a run
(:mod:`invalloc.agents.run_files`), and rule-table manifests (:mod:`invalloc.rules.manifest`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
