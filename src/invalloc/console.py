"""The consoles every command prints to, and the one way a command reports bad input.

Bad input (a malformed file, an unknown policy, an unreachable store) is reported as one
``error: …`` line per problem on standard error with exit code 2 — never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
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
