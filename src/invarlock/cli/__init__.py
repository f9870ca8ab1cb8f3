"""The ``invarlock`` command line: it parses and prints; the runner runs.

Start-up stays free of torch and transformers: ``invarlock --help`` and every
``invarlock plugins`` command import neither.
"""

from __future__ import annotations

import click

from invarlock import __version__
from invarlock.cli.export_cmd import export_command
from invarlock.cli.plugins_cmd import plugins_command
from invarlock.cli.report_cmd import report_command
from invarlock.cli.run_cmd import run_command
from invarlock.plugins.settings import debug_trace_enabled


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="invarlock")
def cli() -> None:
    """Quantize a language model with RTN and prove, with guards, that it did no harm.

    Exit codes: 0 kept, 1 rolled back by a guard, 2 usage or configuration error,
    3 plugin error, 4 model or data error, 130 interrupted.
    """


cli.add_command(plugins_command)
cli.add_command(run_command)
cli.add_command(export_command)
cli.add_command(report_command)


def main() -> None:
    """Console-script entry point."""
    if debug_trace_enabled():
        from invarlock.plugins.tracing import enable_debug_logging

        enable_debug_logging()
    cli(prog_name="invarlock")
