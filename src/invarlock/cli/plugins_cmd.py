"""``invarlock plugins [list|adapters|guards|edits|hooks]``: what is installed, and is it usable.

Exit codes: 0 listed (broken plugins are shown, not fatal); 2 usage error (e.g. an unknown
``--explain`` name); 3 ``--strict-plugins`` and some plugin is broken, clashing or
needs a missing package.
"""

from __future__ import annotations

import contextlib
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
@click.argument("category", required=False, default="list", type=click.Choice([*CATEGORIES, "new"]))
@click.argument("new_args", nargs=-1, metavar="[KIND NAME]")
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
    "--specs",
    is_flag=True,
    help="List the hooks a plugin can implement, with their signatures, and exit.",
)
@click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Search local plugin files from this config's directory (default: the current directory).",
)
@click.option(
    "--dir",
    "new_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="With `new`: where to write the plugin.",
)
@plugin_options
def plugins_command(
    category: str,
    new_args: tuple[str, ...],
    new_dir: Path,
    as_json: bool,
    verbose: bool,
    explain: str | None,
    hook: str | None,
    specs: bool,
    config: Path | None,
    plugin_args: tuple[str, ...],
    no_local_plugins: bool,
    strict_plugins: bool,
) -> None:
    """List installed adapters, guards and edits and whether each is usable.

    CATEGORY is one of list (everything, the default), adapters, guards, edits, hooks.
    `invarlock plugins new KIND NAME` writes a new plugin instead: KIND is guard, adapter,
    hooks (each a package that installs, passes its tests and is listed) or local (an
    invarlock_plugins.py file and its test).
    """
    if category == "new":
        _new(new_args, new_dir)
        return
    if new_args:
        raise click.UsageError(f"unexpected argument(s): {' '.join(new_args)}")
    from invarlock.plugins.listing import listing_document, listing_records
    from invarlock.plugins.manager import PluginManager
    from invarlock.plugins.reference import hook_names, hook_specs_text

    if specs:
        click.echo(hook_specs_text(), nl=False)
        return
    if hook is not None and hook not in hook_names():
        import difflib

        close = difflib.get_close_matches(hook, hook_names(), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        click.echo(
            f"Error: unknown hook {hook!r}{hint} (invarlock plugins --specs lists them)", err=True
        )
        sys.exit(EXIT_USAGE)

    start = config.resolve().parent if config is not None else Path.cwd()
    selection = make_selection(plugin_args, no_local_plugins, False, local_start=start)
    # A plugin that prints while it is imported must not corrupt the --json document.
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        manager = PluginManager(selection).load()
    kinds = CATEGORIES[category]

    if explain is not None:
        _explain(manager, explain, kinds, _current_order(config))
    elif as_json:
        document = listing_document(manager, kinds, hook=hook)
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        from invarlock.cli.plugins_view import render_details, render_local_files, render_tables
        from invarlock.cli.render import stdout_console

        console = stdout_console()
        records = listing_records(manager, kinds, hook)
        render_tables(console, records, kinds)
        if verbose:
            render_local_files(console, manager)
            render_details(console, records)
        if not records:
            console.print("No plugins found.")

    problems = manager.problems()
    if strict_plugins and problems:
        error = PluginError("plugin problems (strict mode):\n  " + "\n  ".join(problems))
        click.echo(f"Error: {error}", err=True)
        sys.exit(EXIT_PLUGIN)


def _current_order(config: Path | None) -> list[str] | None:
    """``guards.order`` of the ``-c`` config, if it has one (read leniently: a listing
    never fails on a config it only borrows an order from)."""
    if config is None:
        return None
    import yaml

    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        order = data["guards"]["order"]
    except Exception:
        return None
    return [str(n) for n in order] if isinstance(order, list) else None


def _explain(
    manager: PluginManager, name: str, kinds: tuple[Kind, ...], order: list[str] | None
) -> None:
    from invarlock.cli.plugins_view import render_explain
    from invarlock.cli.render import stdout_console
    from invarlock.plugins.listing import listing_records

    listed = listing_records(manager, kinds)
    records = [r for r in listed if r.name == name]
    if not records:
        known = sorted({r.name for r in listed if r.kind is not Kind.HOOKS})
        broken = manager.broken_plugins()
        lines = [f"Error: no adapter, guard or edit named {name!r}; known: {', '.join(known)}"]
        if broken:
            lines.append("plugins that failed to load (one may provide it):")
            lines += [f"  {line}" for line in broken]
        click.echo("\n".join(lines), err=True)
        sys.exit(EXIT_PLUGIN if broken else EXIT_USAGE)
    console = stdout_console()
    for record in records:
        render_explain(console, record, order)


def _new(arguments: tuple[str, ...], directory: Path) -> None:
    from invarlock.core.errors import ConfigError
    from invarlock.plugins.scaffold import KINDS, package_directory, scaffold

    if len(arguments) != 2:
        raise click.UsageError(f"usage: invarlock plugins new {{{'|'.join(KINDS)}}} NAME")
    kind, name = arguments
    try:
        written = scaffold(kind, name, directory)
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    for path in written:
        click.echo(f"wrote {path}")
    root = directory / package_directory(kind, name)
    if kind == "local":
        click.echo(f"next: python -m pytest {directory / 'tests'}")
    else:
        click.echo(f"next: pip install -e {root} && python -m pytest {root / 'tests'}")
