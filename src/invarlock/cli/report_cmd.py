"""``invarlock report``: render a run as Markdown or HTML, compare two runs, validate reports.

Exit codes: 0 written or valid, 2 usage error or an invalid / unreadable report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from invarlock.core.errors import EXIT_USAGE, InvarlockError

FORMATS = ("md", "html")


@click.command("report")
@click.argument("paths", nargs=-1, required=True, metavar="RUN_DIR [RUN_DIR_B] | validate PATH...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="md",
    show_default=True,
    help="Markdown (for pull requests and chat) or a self-contained HTML page.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)
def report_command(paths: tuple[str, ...], fmt: str, output: Path | None) -> None:
    """Render a run's report, compare two runs, or validate reports.

    \b
    invarlock report RUN_DIR [--format md|html] [-o FILE]     one run
    invarlock report RUN_A RUN_B [--format md|html] [-o FILE] two runs side by side
    invarlock report validate PATH...                         check report.json / plan files

    RUN_DIR is a run directory or its report.json. HTML plots need the plots extra
    (pip install 'invarlock[plots]'); without it the page has every table.
    """
    from invarlock.cli.render import print_problem, stderr_console

    try:
        if paths[0] == "validate":
            if output is not None:
                raise click.UsageError("report validate prints its findings; it takes no -o")
            code = _validate([Path(p) for p in paths[1:]])
        else:
            _render([Path(p) for p in paths], fmt, output)
            code = 0
    except InvarlockError as exc:
        print_problem(stderr_console(), "Error", str(exc))
        code = exc.exit_code
    sys.exit(code)


def _render(paths: list[Path], fmt: str, output: Path | None) -> None:
    from invarlock.reports.view import load_report

    if len(paths) > 2:
        raise click.UsageError("give one run directory, or two to compare")
    views = [load_report(p) for p in paths]
    if len(views) == 1:
        if fmt == "html":
            from invarlock.reports.html import render_html

            text = render_html(views[0])
        else:
            from invarlock.reports.markdown import render_markdown

            text = render_markdown(views[0])
    else:
        from invarlock.reports.compare import render_compare_html, render_compare_markdown

        render = render_compare_html if fmt == "html" else render_compare_markdown
        text = render(views[0], views[1])
    if output is None:
        sys.stdout.write(text)
        return
    from invarlock.core.atomic import atomic_write

    try:
        with atomic_write(output) as handle:
            handle.write(text)
    except OSError as exc:
        raise InvarlockError(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"Wrote {output} ({output.stat().st_size:,} bytes)", err=True)


def _validate(paths: list[Path]) -> int:
    from invarlock.reports.validate import problems
    from invarlock.reports.view import REPORT_FILE

    if not paths:
        raise click.UsageError("report validate needs at least one PATH")
    code = 0
    for path in paths:
        file = path / REPORT_FILE if path.is_dir() else path
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            click.echo(f"{file}: cannot read: {getattr(exc, 'strerror', None) or exc}")
            code = EXIT_USAGE
            continue
        except json.JSONDecodeError as exc:
            click.echo(f"{file}: not JSON: {exc}")
            code = EXIT_USAGE
            continue
        found = problems(document)
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            click.echo(f"{file}: invalid: {found[0]}{more}")
            code = EXIT_USAGE
        else:
            click.echo(f"{file}: valid {document['schema']}")
    return code
