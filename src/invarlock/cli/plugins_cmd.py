"""``invarlock plugins [list|adapters|guards|edits|hooks]``: what is installed, and is it usable.

Exit codes: 0 listed (broken plugins are shown, not fatal); 2 usage error (e.g. an unknown
``--explain`` name); 3 ``--strict-plugins`` and some plugin is broken, clashing or
needs a missing package.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from invarlock.cli.options import make_selection, plugin_options
from invarlock.core.errors import EXIT_PLUGIN, EXIT_USAGE, PluginError
from invarlock.plugins.records import KIND_ORDER, Kind

if TYPE_CHECKING:
    from invarlock.plugins.manager import PluginManager

CATEGORIES = {
    "list": KIND_ORDER,
    "all": KIND_ORDER,
    "adapters": (Kind.ADAPTER,),
    "guards": (Kind.GUARD,),
    "edits": (Kind.EDIT,),
    "evaluators": (Kind.EVALUATOR,),
    "hooks": (Kind.HOOKS,),
}


@click.command("plugins")
@click.argument("category", required=False, default="list", type=click.Choice(list(CATEGORIES)))
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document (schema invarlock.plugins/v1)."
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Add module, entry point, distribution, file and hooks."
)
@click.option(
    "--explain",
    metavar="NAME",
    help="Explain one adapter, guard or edit: options, YAML, hooks, source.",
)
@click.option("--hook", metavar="HOOK", help="Only components implementing this hook.")
@click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Search local plugin files from this config's directory (default: the current directory).",
)
@plugin_options
def plugins_command(
    category: str,
    as_json: bool,
    verbose: bool,
    explain: str | None,
    hook: str | None,
    config: Path | None,
    plugin_args: tuple[str, ...],
    no_local_plugins: bool,
    strict_plugins: bool,
) -> None:
    """List installed adapters, guards and edits and whether each is usable.

    CATEGORY is one of list (everything, the default), adapters, guards, edits, hooks.
    """
    from invarlock.plugins.listing import listing_document
    from invarlock.plugins.manager import PluginManager

    start = config.resolve().parent if config is not None else Path.cwd()
    selection = make_selection(plugin_args, no_local_plugins, False, local_start=start)
    manager = PluginManager(selection).load()
    kinds = CATEGORIES[category]

    if explain is not None:
        _explain(manager, explain, kinds)
    elif as_json:
        document = listing_document(manager, kinds, hook=hook)
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        from invarlock.cli.plugins_view import render_details, render_tables
        from invarlock.cli.render import stdout_console

        console = stdout_console()
        records = [r for r in manager.components if r.kind in kinds]
        if hook is not None:
            records = [r for r in records if hook in {h.hook for h in r.hooks}]
        render_tables(console, records, kinds)
        if verbose:
            render_details(console, records)
        if not records:
            console.print("No plugins found.")

    problems = manager.problems()
    if strict_plugins and problems:
        error = PluginError("plugin problems (strict mode):\n  " + "\n  ".join(problems))
        click.echo(f"Error: {error}", err=True)
        sys.exit(EXIT_PLUGIN)


def _explain(manager: PluginManager, name: str, kinds: tuple[Kind, ...]) -> None:
    from invarlock.cli.plugins_view import render_explain
    from invarlock.cli.render import stdout_console

    records = [r for r in manager.components if r.name == name and r.kind in kinds]
    if not records:
        known = sorted(
            {r.name for r in manager.components if r.kind in kinds and r.kind is not Kind.HOOKS}
        )
        click.echo(
            f"Error: no adapter, guard or edit named {name!r}; known: {', '.join(known)}", err=True
        )
        sys.exit(EXIT_USAGE)
    console = stdout_console()
    for record in records:
        render_explain(console, record)
