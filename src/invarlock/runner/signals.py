"""SIGTERM handled like Ctrl-C during a run, and no second signal breaking the clean-up.

After :func:`interrupts_as_exceptions`, the first SIGINT raises ``KeyboardInterrupt`` and
the first SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``), so one code path
restores the model, writes the report, runs the finish hooks and removes snapshot files.
Later signals are ignored until the handlers are restored, so a second Ctrl-C cannot cut
the restore short. Outside the main thread (where Python cannot install handlers) nothing
changes.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from invarlock.core.errors import EXIT_INTERRUPTED, EXIT_TERMINATED


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def interrupt_exit_code(exc: KeyboardInterrupt) -> int:
    """143 for SIGTERM, 130 for Ctrl-C."""
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def interrupts_as_exceptions() -> Callable[[], None]:
    """Install the handlers; return the function that puts the previous ones back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    raised = False

    def handle(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if raised:
            return  # clean-up is running: let it finish
        raised = True
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
