"""``invarlock export RUN_DIR --format F``: write a finished run's guarded model in formats
serving stacks load, each proven by loading it back.

Exit codes: 0 written and proven, 2 usage (not a vouched run, a format that cannot hold the
edit), 3 plugin error, 4 model or export error (nothing partial is left behind).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from invarlock.core.errors import EXIT_INTERRUPTED, InvarlockError
from invarlock.exporters import FORMATS


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--format",
    "formats",
    multiple=True,
    required=True,
    type=click.Choice(list(FORMATS)),
    help="Checkpoint format; repeat for several.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the export entries as JSON.")
def export_command(run_dir: Path, formats: tuple[str, ...], as_json: bool) -> None:
    """Re-create a kept run's model (verified against report.json) and export it."""
    from invarlock.cli.render import print_problem, stderr_console

    err = stderr_console()
    try:
        code = _export(run_dir, formats, as_json)
    except InvarlockError as exc:
        print_problem(err, "Error", str(exc))
        code = exc.exit_code
    except KeyboardInterrupt:
        err.print("Interrupted.")
        code = EXIT_INTERRUPTED
    sys.exit(code)


def _export(run_dir: Path, formats: tuple[str, ...], as_json: bool) -> int:
    from invarlock.cli.options import make_selection
    from invarlock.plugins.manager import PluginManager
    from invarlock.runner.replay import export_run, read_run

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if len(set(formats)) != len(formats):
        raise click.UsageError("a --format is given twice")
    config = read_run(run_dir)["config"]
    selection = make_selection(
        (), False, False, local_start=run_dir.resolve(), config_plugins=config.get("plugins")
    )
    entries = export_run(run_dir, formats, PluginManager(selection).load())
    if as_json:
        sys.stdout.write(json.dumps(entries, indent=2) + "\n")
        return 0
    for entry in entries:
        proof = entry["proof"]
        size = sum(item["bytes"] for item in entry["files"])
        click.echo(
            f"{entry['format']}: {entry['path']} ({size:,} bytes); loaded back through"
            f" {proof['loader']}: bit-equal to the guarded model"
        )
    return 0
