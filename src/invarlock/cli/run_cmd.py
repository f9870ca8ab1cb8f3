"""``invarlock run -c config.yaml``: parse, load plugins, hand over to the runner, print.

Exit codes: 0 kept (with or without warnings), 1 rolled back by a guard, 2 usage or
configuration error, 3 plugin error, 4 model or data error, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from invarlock.cli.options import make_selection, plugin_options
from invarlock.core.errors import InvarlockError, PluginError
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
@click.option(
    "--dry-run",
    is_flag=True,
    help="Run every check that needs no model, print the plan; load and create nothing.",
)
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
    except KeyboardInterrupt as exc:
        from invarlock.runner.signals import interrupt_exit_code

        err.print("Interrupted.")
        code = interrupt_exit_code(exc)
    sys.exit(code)


def _run(**options: Any) -> int:
    """With ``--json``, stdout carries one JSON document and nothing else: whatever plugins
    (or the libraries they call) print goes to stderr instead."""
    if not options["as_json"]:
        return _run_and_print(**options)
    json_out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        return _run_and_print(**options, json_out=json_out)


def _run_and_print(
    config_path: Path,
    overrides: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    plugin_args: tuple[str, ...],
    no_local_plugins: bool,
    strict_plugins: bool,
    json_out: TextIO | None = None,
) -> int:
    from invarlock.cli.render import print_problem, stderr_console, stdout_console
    from invarlock.plugins.manager import PluginManager
    from invarlock.runner.config import load_config

    # invarlock draws its own progress; transformers' bars would interleave with it.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # imported before us (in-process use): tell it directly
        sys.modules["transformers"].utils.logging.disable_progress_bar()
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
        plan = Runner(config, manager).preflight()  # every check the run makes first
        if as_json:
            from invarlock.runner.plan import PLAN_SCHEMA

            document = {"schema": PLAN_SCHEMA, **plan.to_dict()}
            (json_out or sys.stdout).write(json.dumps(document, indent=2) + "\n")
        else:
            from invarlock.cli.run_view import render_plan

            render_plan(stdout_console(), plan)
        return 0

    from invarlock.cli.run_view import RunDisplay, render_summary
    from invarlock.models.progress import use_console

    use_console(err)  # a GGUF conversion draws under the run's phase spinner
    manager.add_host_plugin(RunDisplay(err), RunDisplay.NAME)
    report = Runner(config, manager).execute()
    if as_json:
        (json_out or sys.stdout).write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        render_summary(stdout_console(), report)
        for warning in report.warnings:
            print_problem(err, "warning", warning, style="yellow")
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
