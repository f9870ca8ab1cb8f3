"""Call every implementation of a notification hook, even when some of them fail.

pluggy stops a hook call at the first implementation that raises. For hooks whose results
are ignored (``invarlock_run_start``, ``invarlock_report``, ``invarlock_run_finish``, ...)
that would silently skip the other plugins, so :func:`notify_each` calls each
implementation on its own, in pluggy's order, and returns one :class:`HookFailure` per
implementation that raised (``SystemExit`` included). Wrappers around a notification hook
wrap each implementation's call. ``KeyboardInterrupt`` (and SIGTERM, which the runner turns
into a ``KeyboardInterrupt``) still propagates at once.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

import pluggy


@dataclass(frozen=True)
class HookFailure:
    """One implementation of ``hook`` in ``plugin`` raised ``error`` (one line)."""

    hook: str
    plugin: str
    error: str
    traceback: str
    exc: BaseException | None = None

    def __str__(self) -> str:
        return f"plugin {self.plugin!r} hook {self.hook} raised {self.error}"


def implementing_plugins(pm: pluggy.PluginManager, hook_name: str) -> list[str]:
    """Names of the plugins with a (non-wrapper) implementation of ``hook_name``, in call order."""
    caller = getattr(pm.hook, hook_name)
    impls = [i for i in caller.get_hookimpls() if not (i.wrapper or i.hookwrapper)]
    return [impl.plugin_name for impl in reversed(impls)]


def notify_each(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[HookFailure]:
    """Call each implementation of ``hook_name`` with ``kwargs``; return the failures."""
    caller = getattr(pm.hook, hook_name)
    impls = caller.get_hookimpls()
    plain = [i for i in impls if not (i.wrapper or i.hookwrapper)]
    failures: list[HookFailure] = []
    if len(plain) <= 1:  # one call, logged even when nobody implements the hook
        try:
            caller(**kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            owner = plain[0].plugin_name if plain else "(hook wrapper)"
            failures.append(
                HookFailure(hook_name, owner, _one_line(exc), traceback.format_exc(), exc)
            )
        return failures
    for impl in reversed(plain):  # pluggy calls the last registered first
        others = [i.plugin for i in plain if i is not impl]
        try:
            pm.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit from a plugin is a failure, not an exit
            failures.append(
                HookFailure(
                    hook_name, impl.plugin_name, _one_line(exc), traceback.format_exc(), exc
                )
            )
    return failures


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        text += f" ({frames[-1].filename}:{frames[-1].lineno})"
    return text
