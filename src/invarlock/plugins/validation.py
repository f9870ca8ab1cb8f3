"""Check a plugin's ``invarlock_*`` functions against the hook contract before registering it.

Pluggy would accept a misspelled hook silently and report a wrong argument in its own
words; these checks name the file and line and suggest the nearest real hook.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

HOOK_PREFIX = "invarlock_"


def spec_arguments(spec_module: ModuleType) -> dict[str, tuple[str, ...]]:
    """Hook name → argument names, read from the hookspec module."""
    specs: dict[str, tuple[str, ...]] = {}
    for name, func in vars(spec_module).items():
        if name.startswith(HOOK_PREFIX) and inspect.isfunction(func):
            specs[name] = tuple(inspect.signature(func).parameters)
    return specs


def hook_functions(plugin: object) -> dict[str, Callable[..., Any]]:
    """Every callable attribute of ``plugin`` whose name carries the hook prefix."""
    found: dict[str, Callable[..., Any]] = {}
    for name in dir(plugin):
        if not name.startswith(HOOK_PREFIX):
            continue
        try:
            value = getattr(plugin, name)
        except Exception:  # a property that raises is not a hook
            continue
        if callable(value):
            found[name] = value
    return found


def location(func: Callable[..., Any]) -> str:
    """``file:line`` where ``func`` is defined (best effort)."""
    target = inspect.unwrap(getattr(func, "__func__", func))
    code = getattr(target, "__code__", None)
    if code is None:
        return "<unknown location>"
    return f"{code.co_filename}:{code.co_firstlineno}"


def required_arguments(func: Callable[..., Any]) -> list[str]:
    """Arguments pluggy will pass: positional parameters without defaults (no ``self``)."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]


def unprefixed_hookimpls(
    plugin: object, plugin_name: str, specs: Mapping[str, tuple[str, ...]]
) -> list[str]:
    """``@hookimpl`` functions whose name lacks the prefix (and no ``specname``): pluggy
    would register them under no hook, so they would never be called."""
    problems = []
    for name in dir(plugin):
        if name.startswith(HOOK_PREFIX) or name.startswith("__"):
            continue
        try:
            value = getattr(plugin, name)
        except Exception:
            continue
        opts = getattr(value, HOOK_PREFIX + "impl", None)
        if not isinstance(opts, dict) or opts.get("specname"):
            continue
        close = difflib.get_close_matches(HOOK_PREFIX + name, list(specs), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.append(
            f"{location(value)}: @hookimpl function {name!r} in plugin {plugin_name!r} lacks "
            f"the {HOOK_PREFIX!r} prefix, so it would never be called{hint}"
        )
    return problems


def check_plugin(
    plugin: object, plugin_name: str, specs: Mapping[str, tuple[str, ...]]
) -> list[str]:
    """Problems with ``plugin``'s hook functions; an empty list means it may be registered."""
    problems = unprefixed_hookimpls(plugin, plugin_name, specs)
    for name, func in sorted(hook_functions(plugin).items()):
        where = location(func)
        if name not in specs:
            close = difflib.get_close_matches(name, list(specs), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"{where}: unknown hook {name!r} in plugin {plugin_name!r}{hint}")
            continue
        expected = specs[name]
        for argument in required_arguments(func):
            if argument not in expected:
                problems.append(
                    f"{where}: hook {name!r} in plugin {plugin_name!r} asks for argument "
                    f"{argument!r}, which the hook does not provide; "
                    f"its arguments are: {', '.join(expected)}"
                )
    return problems
