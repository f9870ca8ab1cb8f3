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
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import pluggy

from invarlock.plugins.wording import one_line_error


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


@dataclass(frozen=True)
class Notified:
    """What one notification did: who implements it besides the host, and who failed."""

    hook: str
    implementers: list[str] = field(default_factory=list)
    failures: list[HookFailure] = field(default_factory=list)


def notify_each(
    pm: pluggy.PluginManager,
    caller: pluggy.HookCaller,
    kwargs: dict[str, Any],
    host: Collection[str] = (),
) -> Notified:
    """Call each implementation of ``caller`` with ``kwargs``; ``host`` names the host's own
    plugins, which are left out of :attr:`Notified.implementers`."""
    hook_name = caller.name
    plain = [i for i in caller.get_hookimpls() if not (i.wrapper or i.hookwrapper)]
    implementers = [i.plugin_name for i in reversed(plain) if i.plugin_name not in host]
    failures: list[HookFailure] = []
    if len(plain) <= 1:  # one call, logged even when nobody implements the hook
        try:
            caller(**kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            owner = plain[0].plugin_name if plain else "(hook wrapper)"
            failures.append(_failure(hook_name, owner, exc))
        return Notified(hook_name, implementers, failures)
    for impl in reversed(plain):  # pluggy calls the last registered first
        others = [i.plugin for i in plain if i is not impl]
        try:
            pm.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit from a plugin is a failure, not an exit
            failures.append(_failure(hook_name, impl.plugin_name, exc))
    return Notified(hook_name, implementers, failures)


def _failure(hook_name: str, plugin: str, exc: BaseException) -> HookFailure:
    return HookFailure(hook_name, plugin, one_line_error(exc), traceback.format_exc(), exc)
