"""Run the real ``invarlock`` CLI in a subprocess with a controlled environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECK_HEAVY_IMPORTS = """
import sys
from invarlock.cli import main
try:
    main()
except SystemExit as exit:
    code = exit.code
heavy = sorted(
    m for m in sys.modules
    if m.split('.')[0] in ('torch', 'transformers', 'matplotlib', 'jsonschema')
)
sys.stderr.write('\\nHEAVY_IMPORTS=' + ','.join(heavy) + '\\n')
sys.exit(code)
"""


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def heavy_imports(self) -> list[str]:
        for line in self.err.splitlines():
            if line.startswith("HEAVY_IMPORTS="):
                return [m for m in line.split("=", 1)[1].split(",") if m]
        raise AssertionError("the CLI was not run with check_imports=True")


def clean_env(**extra: str) -> dict[str, str]:
    keep = {"INVARLOCK_CACHE_DIR"}  # the test session's cache, never the user's
    env = {
        k: v
        for k, v in os.environ.items()
        if (k in keep or not k.startswith("INVARLOCK_")) and k != "COLUMNS"
    }
    env.update(OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(extra)
    return env


def run_cli(
    *args: str,
    cwd: Path | None = None,
    site: Path | None = None,
    env: dict[str, str] | None = None,
    check_imports: bool = False,
    timeout: float = 300,
) -> CliResult:
    """``python -m invarlock ARGS`` (or the import-checking wrapper) with ``site`` on PYTHONPATH."""
    environment = clean_env(**(env or {}))
    if site is not None:
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(site), *filter(None, [environment.get("PYTHONPATH")])]
        )
    if check_imports:
        command = [sys.executable, "-c", CHECK_HEAVY_IMPORTS, *args]
    else:
        command = [sys.executable, "-m", "invarlock", *args]
    proc = subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def table_row(output: str, name: str) -> list[str]:
    """The cells of the Markdown-table row whose first cell is ``name``."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == name:
            return cells
    raise AssertionError(f"no row {name!r} in:\n{output}")


def listed(result: CliResult, name: str, kind: str | None = None) -> dict[str, Any]:
    """The ``invarlock plugins --json`` component called ``name`` (of ``kind``, if given)."""
    found = [
        c
        for c in result.json()["components"]
        if c["name"] == name and (kind is None or c["kind"] == kind)
    ]
    assert len(found) == 1, f"{len(found)} components named {name!r} in:\n{result.out}"
    return found[0]


def state(result: CliResult, name: str) -> tuple[str, str]:
    """``(status, detail)`` of the listed component ``name``, e.g. ``("ready", "")``."""
    component = listed(result, name)
    return component["status"], component["detail"]
