"""Consoles for the CLI: wide when piped (no wrapping of paths and errors), rich on a tty."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.text import Text

#: Width for piped output: wide enough that table rows never wrap, so ``grep`` finds them.
PIPED_WIDTH = 4000


def _width(stream: object) -> int | None:
    piped = not getattr(stream, "isatty", lambda: False)()
    return int(os.environ.get("COLUMNS", 0)) or (PIPED_WIDTH if piped else None)


def stdout_console() -> Console:
    return Console(width=_width(sys.stdout), soft_wrap=False, highlight=False)


def stderr_console() -> Console:
    return Console(stderr=True, width=_width(sys.stderr), soft_wrap=False, highlight=False)


def print_problem(console: Console, label: str, message: str, style: str = "bold red") -> None:
    """``Error: message`` / ``warning: message``; the message is never read as markup."""
    console.print(Text.assemble((f"{label}: ", style), message), soft_wrap=True)
