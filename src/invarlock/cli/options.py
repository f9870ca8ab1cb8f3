"""Options shared by the commands that load plugins."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from invarlock.plugins.discovery import Selection


def plugin_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``-p NAME`` / ``-p no:NAME``, ``--no-local-plugins`` and ``--strict-plugins``."""
    func = click.option(
        "--strict-plugins",
        is_flag=True,
        help="Fail (exit 3) when any plugin is broken, clashing or needs a missing package.",
    )(func)
    func = click.option(
        "--no-local-plugins",
        is_flag=True,
        help="Do not load local invarlock_plugins.py files.",
    )(func)
    func = click.option(
        "-p",
        "plugin_args",
        multiple=True,
        metavar="NAME",
        help="Load plugin NAME (entry-point name or module); -p no:NAME blocks it.",
    )(func)
    return func


def make_selection(
    plugin_args: tuple[str, ...],
    no_local_plugins: bool,
    strict_plugins: bool,
    *,
    local_start: Path | None,
    config_plugins: dict[str, Any] | None = None,
) -> Selection:
    from invarlock.plugins.discovery import Selection

    config_plugins = config_plugins or {}
    return Selection.build(
        plugin_args,
        config_load=config_plugins.get("load", ()) or (),
        config_block=config_plugins.get("block", ()) or (),
        local_files=not no_local_plugins and config_plugins.get("local_files", True),
        local_start=local_start,
        strict=strict_plugins,
    )
