"""The consoles every command prints to, and the one way a command reports bad input.

Bad input (a malformed file, an unknown policy, an unreachable store) is reported as one
``error: …`` line per problem on standard error with exit code 2 — never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

#: Results (tables, summaries) go to standard output.
console = Console(soft_wrap=True)
#: Errors and progress go to standard error. No emoji: ``run:abc:`` must print as typed.
error_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def fail(lines: Iterable[object], code: int = 2) -> NoReturn:
    """Print each problem as one ``error:`` line (whitespace folded) and exit with ``code``."""
    for line in lines:
        error_console.print(f"error: {' '.join(str(line).split())}", markup=False)
    raise typer.Exit(code=code)


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (libraries like MLflow add pages), or its type."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def output_file_problems(path: Path, option: str, suffixes: tuple[str, ...] = ()) -> list[str]:
    """Why ``path`` cannot receive an output file (checked before any long run); empty if it can.

    A missing parent folder is fine (it is created); a folder in the way, a parent that is a
    file, a parent that cannot be written or a suffix other than ``suffixes`` are not.
    """
    path = Path(path)
    if path.is_dir():
        return [f"{option} {path}: is a folder; give a file name"]
    if suffixes and path.suffix.lower() not in suffixes:
        return [f"{option} {path}: must end in {' or '.join(suffixes)}"]
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return [f"{option} {path}: {parent} is a file, not a folder"]
    if not os.access(parent, os.W_OK | os.X_OK):
        return [f"{option} {path}: folder {parent} is not writable"]
    return []
