"""``invarlock run -c config.yaml``: parse, load plugins, hand over to the runner, print.

Exit codes: 0 kept (with or without warnings), 1 rolled back by a guard, 2 usage or
configuration error, 3 plugin error, 4 model or data error, 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from invarlock.cli.options import make_selection, plugin_options
from invarlock.core.errors import EXIT_INTERRUPTED, InvarlockError, PluginError
from invarlock.plugins.records import Status

if TYPE_CHECKING:
    from invarlock.plugins.manager import PluginManager


@click.command("run")
@click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="YAML run configuration.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override a config key (value parsed as YAML), e.g. --set edit.bits=4.",
)
@click.option("--dry-run", is_flag=True, help="Print the resolved plan without loading the model.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the plan (--dry-run) or report as JSON."
)
@plugin_options
def run_command(**options: Any) -> None:
    """Load, snapshot, prepare guards, quantize, validate, then keep or roll back."""
    from invarlock.cli.render import print_problem, stderr_console

    err = stderr_console()
    try:
        code = _run(**options)
    except InvarlockError as exc:
        print_problem(err, "Error", str(exc))
        code = exc.exit_code
    except KeyboardInterrupt:
        err.print("Interrupted.")
        code = EXIT_INTERRUPTED
    sys.exit(code)


def _run(
    config_path: Path,
    overrides: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    plugin_args: tuple[str, ...],
    no_local_plugins: bool,
    strict_plugins: bool,
) -> int:
    from invarlock.cli.render import print_problem, stderr_console, stdout_console
    from invarlock.plugins.manager import PluginManager
    from invarlock.runner.config import load_config

    # invarlock draws its own progress; transformers' bars would interleave with it.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    config = load_config(config_path, overrides)
    selection = make_selection(
        plugin_args,
        no_local_plugins,
        strict_plugins,
        local_start=config_path.resolve().parent,
        config_plugins=config.plugins.as_dict(),
    )
    manager = PluginManager(selection).load()
    _check_requested_plugins(manager)
    err = stderr_console()
    for problem in manager.problems():
        print_problem(err, "warning", problem, style="yellow")

    from invarlock.runner.runner import Runner

    if dry_run:
        plan = Runner(config, manager).plan()
        if as_json:
            sys.stdout.write(json.dumps(plan.to_dict(), indent=2) + "\n")
        else:
            from invarlock.cli.run_view import render_plan

            render_plan(stdout_console(), plan)
        return 0

    from invarlock.cli.run_view import RichObserver, render_summary
    from invarlock.models.progress import use_console

    use_console(err)  # a GGUF conversion draws under the run's phase spinner
    report = Runner(config, manager, RichObserver(err)).execute()
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        render_summary(stdout_console(), report)
    if report.error and report.exit_code != 0:
        print_problem(err, "Error", report.error["message"])
    return report.exit_code


def _check_requested_plugins(manager: PluginManager) -> None:
    """A plugin the user asked for by name (-p, INVARLOCK_PLUGINS, plugins.load) must load."""
    requested = set(manager.selection.load)
    broken = [
        p
        for p in manager.plugins
        if p.name in requested and p.status in (Status.ERROR, Status.NEEDS)
    ]
    if broken:
        lines = [
            f"{p.name}: {'needs ' if p.status is Status.NEEDS else ''}{p.detail}" for p in broken
        ]
        raise PluginError("requested plugin(s) failed to load:\n  " + "\n  ".join(lines))
