"""SIGTERM handled like Ctrl-C during a run, and no second signal breaking the clean-up.

Inside :func:`signals_as_interrupts` the first SIGINT raises ``KeyboardInterrupt`` and the
first SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``), so one code path
restores the model, writes the report, runs the finish hooks and removes snapshot files.
Later signals are ignored until the block ends, so a second Ctrl-C cannot cut the restore
short. Outside the main thread (where Python cannot install handlers) nothing changes.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from invarlock.core.errors import EXIT_INTERRUPTED, EXIT_TERMINATED


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def interrupt_exit_code(exc: KeyboardInterrupt) -> int:
    """143 for SIGTERM, 130 for Ctrl-C."""
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def handle(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if raised:
            return  # clean-up is running: finish it
        raised = True
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
