"""``report.html`` next to ``report.json``: what the runner calls at the end of a run."""

from __future__ import annotations

import logging
from pathlib import Path

from invarlock.core.atomic import atomic_write
from invarlock.core.report import RunReport
from invarlock.reports.plots import plots_available

HTML_FILE = "report.html"
log = logging.getLogger(__name__)


def write_run_page(report: RunReport, run_dir: Path) -> Path | None:
    """Write ``run_dir/report.html`` when the ``plots`` extra is installed.

    Never raises: a failure to render or write becomes a warning in ``report.warnings``
    (call this before writing ``report.json``) and never changes the run's decision.
    """
    if not plots_available():
        return None
    from invarlock.reports.html import render_html
    from invarlock.reports.view import build_view

    target = run_dir / HTML_FILE
    try:
        text = render_html(build_view(report.to_dict(), run_dir / "report.json"))
        with atomic_write(target) as handle:
            handle.write(text)
    except Exception as exc:
        message = f"report.html not written: {type(exc).__name__}: {exc}"
        log.warning(message)
        report.warnings.append(message)
        return None
    return target
