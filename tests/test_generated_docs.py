"""Every document a ``scripts/gen_*.py`` writes is current: each script's ``--check`` passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GENERATORS = sorted((REPO / "scripts").glob("gen_*.py"))


def test_the_generators_are_found() -> None:
    assert {p.name for p in GENERATORS} >= {"gen_exit_codes.py", "gen_faults_doc.py"}


@pytest.mark.parametrize("script", GENERATORS, ids=[p.stem for p in GENERATORS])
def test_the_generated_document_is_current(script: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, cwd=REPO
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
