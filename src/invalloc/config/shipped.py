"""Files shipped inside the package (scenarios, experiments) and how a name finds its file.

The YAML files are package data (``invalloc/scenarios/*.yaml``, ``invalloc/experiments/*.yaml``),
read through :mod:`importlib.resources`, so a plain ``pip install`` carries them. A name such as
``retail`` is looked up in this order:

1. a file of that name, as given (``retail`` or ``my/retail.yaml``);
2. the working directory's project folder: ``./configs/scenarios/retail.yaml`` for a scenario,
   ``./experiments/NAME.yaml`` for an experiment, so a project can add its own or override a
   shipped one;
3. the package.

Anything that looks like a path (a ``.yaml``/``.yml`` suffix or a folder part) is used as given,
so a mistyped path is reported as that path.
"""

from __future__ import annotations

import atexit
import contextlib
from importlib import resources
from pathlib import Path
from typing import Literal

#: What is shipped: scenarios or training experiments.
Kind = Literal["scenarios", "experiments"]

#: Folder, relative to the working directory, whose files add to or override the shipped ones.
PROJECT_FOLDERS: dict[str, Path] = {
    "scenarios": Path("configs") / "scenarios",
    "experiments": Path("experiments"),
}

_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


def shipped_folder(kind: Kind) -> Path:
    """The package's folder of shipped ``kind`` files (a real folder, extracted if the package is zipped)."""
    folder = resources.files("invalloc") / kind
    if isinstance(folder, Path):
        return folder
    return Path(_extracted.enter_context(resources.as_file(folder)))  # pragma: no cover - zip imports only


def shipped_names(kind: Kind) -> list[str]:
    """Names of the shipped ``kind`` files (``retail``, ``tiny``, …), sorted."""
    return sorted(path.stem for path in shipped_folder(kind).glob("*.yaml"))


def looks_like_path(name_or_path: str | Path) -> bool:
    """True for ``x.yaml``, ``x.yml`` or anything with a folder part; False for a bare name."""
    candidate = Path(name_or_path)
    return candidate.suffix in {".yaml", ".yml"} or len(candidate.parts) > 1


def resolve(name_or_path: str | Path, kind: Kind) -> Path:
    """The file ``name_or_path`` stands for (see the module docstring); it may not exist.

    A bare name found nowhere resolves to the shipped folder's ``NAME.yaml``, which does not
    exist: the caller reports it with :func:`not_found`.
    """
    candidate = Path(name_or_path)
    if candidate.is_file() or looks_like_path(candidate):
        return candidate
    local = PROJECT_FOLDERS[kind] / f"{candidate}.yaml"
    if local.is_file():
        return local
    return shipped_folder(kind) / f"{candidate}.yaml"


def not_found(name_or_path: str | Path, kind: Kind) -> tuple[str, str]:
    """``(source, problem)`` for a file that :func:`resolve` could not find.

    The source is the path when one was given, else the bare name; the problem lists the shipped
    names and where a project's own file would go.
    """
    noun = "scenario" if kind == "scenarios" else "experiment"
    shipped = ", ".join(shipped_names(kind))
    if looks_like_path(name_or_path):
        return str(name_or_path), f"(file): no such {noun} file (shipped {kind}: {shipped})"
    local = PROJECT_FOLDERS[kind] / f"{name_or_path}.yaml"
    return str(name_or_path), f"(file): no such {noun} file (shipped {kind}: {shipped}; or add ./{local})"
