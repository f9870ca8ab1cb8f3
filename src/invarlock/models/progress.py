"""The GGUF conversion's progress on stderr: a title, a live step display, a summary line.

``invarlock run`` hands its stderr console to :func:`use_console`, so the display nests under
the run's phase spinner instead of fighting it for the terminal. Where the console cannot nest
live displays (rich < 14.1), each step is printed as a line instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.errors import LiveError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

_console: Console | None = None


def use_console(console: Console | None) -> None:
    """Draw conversion progress on ``console`` (``None``: a fresh stderr console each time)."""
    global _console
    _console = console


def display_console() -> Console:
    return _console if _console is not None else Console(stderr=True, highlight=False)


class ConversionDisplay:
    """Steps of one conversion: a spinner for open-ended steps, a bar for counted ones."""

    def __init__(self, console: Console, progress: Progress | None) -> None:
        self._console, self._progress = console, progress
        self._task: TaskID | None = None
        self._current: str | None = None
        self._started = 0.0
        #: Seconds each finished step took, in order.
        self.timings: dict[str, float] = {}

    def step(self, description: str, total: int | None = None) -> None:
        """Finish the current step and start ``description`` (``total``: items to count)."""
        self.finish_step()
        self._current, self._started = description, time.perf_counter()
        if self._progress is None:
            self._console.print(f"  {description}", highlight=False, markup=False)
        else:
            self._task = self._progress.add_task(description, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, amount)

    def finish_step(self) -> None:
        if self._current is not None:
            self.timings[self._current] = round(time.perf_counter() - self._started, 3)
        if self._progress is not None and self._task is not None:
            done = self._progress.tasks[self._task].total or 1
            self._progress.update(self._task, total=done, completed=done)
        self._task, self._current = None, None


@contextmanager
def conversion_display(title: str) -> Iterator[ConversionDisplay]:
    """Print ``title`` and show the steps taken inside the block, live where possible."""
    console = display_console()
    console.print(title, highlight=False, markup=False, soft_wrap=True)
    progress: Progress | None = Progress(
        SpinnerColumn(),
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    try:
        progress.start()
    except LiveError:
        progress = None
    display = ConversionDisplay(console, progress)
    try:
        yield display
        display.finish_step()
    finally:
        if progress is not None:
            progress.stop()
