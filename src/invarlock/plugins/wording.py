"""How plugin problems are worded: one line per error, with the file and line that raised."""

from __future__ import annotations

import inspect
import traceback

from invarlock.plugins.records import PluginInfo, Status


def one_line_error(exc: BaseException) -> str:
    """``Type: message (file:line)`` for the innermost frame of ``exc``."""
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" ({last.filename}:{last.lineno})"
    return text


def missing_package(exc: BaseException, own_module: str | None) -> str | None:
    """The top-level package a plugin needs but that is not installed, if that is the cause."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    missing = exc.name.split(".")[0]
    own = (own_module or "").split(".")[0]
    return None if missing == own else missing


def definition(cls: type) -> str:
    """``file:line`` of a class's definition (best effort)."""
    try:
        return f"{inspect.getsourcefile(cls)}:{inspect.getsourcelines(cls)[1]}"
    except (OSError, TypeError):
        return cls.__module__


def summary(obj: object) -> str:
    """The first line of ``obj``'s docstring."""
    doc = (inspect.getdoc(obj) or "").strip()
    return doc.splitlines()[0] if doc else ""


def provider(info: PluginInfo) -> str:
    """A plugin as a clash message names it: distribution and entry point, or file."""
    if info.distribution and info.entry_point:
        return f"{info.distribution_label} ({info.entry_point})"
    if info.distribution:
        return f"{info.distribution_label} ({info.name})"
    if info.file:
        return f"{info.name} ({info.file})"
    return info.name


def status_words(status: Status, detail: str) -> str:
    return f"needs {detail}" if status is Status.NEEDS else detail
