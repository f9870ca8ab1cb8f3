"""Hook-call monitoring: the debug trace (``INVARLOCK_DEBUG_TRACE=1``) and event listeners.

pluggy's own tracer prints every argument in full (a model's repr runs to pages), so this
one prints short reprs, the implementing plugins and the duration of every hook call.
"""

from __future__ import annotations

import logging
import reprlib
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import pluggy

log = logging.getLogger("invarlock.plugins")
trace_log = logging.getLogger("invarlock.hooks")

#: listener(hook_name, plugin_names, kwargs, duration_s, error_or_None)
HookListener = Callable[[str, list[str], Mapping[str, Any], float, "BaseException | None"], None]

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60


def short_repr(value: Any) -> str:
    """A one-line repr: modules and tensors by type name, everything else truncated."""
    module = type(value).__module__ or ""
    if module.startswith(("torch", "transformers")):
        shape = getattr(value, "shape", None)
        return f"<{type(value).__name__}{list(shape) if shape is not None else ''}>"
    return _short.repr(value)


def enable_debug_logging(stream: Any = None) -> None:
    """Send invarlock's debug log (discovery and hook calls) to stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("[invarlock %(name)s] %(message)s"))
    root = logging.getLogger("invarlock")
    if not any(getattr(h, "_invarlock_trace", False) for h in root.handlers):
        handler._invarlock_trace = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.DEBUG)


class HookMonitor:
    """One pluggy call monitor that fans out to listeners and the debug trace.

    Listeners never see the host's own plugins (``host``, e.g. the run display) among the
    implementers, nor a call of one of the ``quiet`` hooks (progress hooks that fire once
    per phase or batch) that only the host implements.
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        host: Collection[str] = (),
        quiet: Collection[str] = (),
    ) -> None:
        self._pm = pm
        self._host = host
        self._quiet = quiet
        self._listeners: list[HookListener] = []
        self._started: list[float] = []
        self._installed = False

    def add_listener(self, listener: HookListener) -> Callable[[], None]:
        self._install()
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _install(self) -> None:
        if not self._installed:
            self._pm.add_hookcall_monitoring(self._before, self._after)
            self._installed = True

    def enable_trace(self) -> None:
        self._install()

    def _before(
        self, hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
    ) -> None:
        self._started.append(time.perf_counter())
        if impls and trace_log.isEnabledFor(logging.DEBUG):
            arguments = ", ".join(f"{k}={short_repr(v)}" for k, v in kwargs.items())
            trace_log.debug("call %s(%s) → %s", hook_name, arguments, _names(impls))

    def _after(
        self,
        outcome: pluggy.Result[Any],
        hook_name: str,
        impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, Any],
    ) -> None:
        duration = time.perf_counter() - self._started.pop()
        error = outcome.exception
        if impls and trace_log.isEnabledFor(logging.DEBUG):
            if error is not None:
                result = f"raised {type(error).__name__}: {error}"
            else:
                result = f"returned {short_repr(outcome.get_result())}"
            trace_log.debug("done %s in %.2f ms: %s", hook_name, duration * 1000, result)
        names = [name for name in _names(impls) if name not in self._host]
        if hook_name in self._quiet and not names:
            return
        for listener in list(self._listeners):
            listener(hook_name, names, kwargs, duration, error)


def _names(impls: Sequence[pluggy.HookImpl]) -> list[str]:
    return [impl.plugin_name for impl in impls]
