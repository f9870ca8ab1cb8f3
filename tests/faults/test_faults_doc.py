"""docs/faults.md is generated from the catalog the suite runs: it fails when stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from catalog import FAULTS

REPO = Path(__file__).resolve().parents[2]


def test_faults_doc_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_faults_doc.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fault_ids_are_unique_and_every_class_is_covered() -> None:
    ids = [f.id for f in FAULTS]
    assert len(ids) == len(set(ids))
    kinds = {f.kind for f in FAULTS}
    assert {"integrity", "contained", "hooks", "config", "dry-run", "local files"} <= kinds
    hooks = {f.setup.split(":")[1] for f in FAULTS if f.setup and f.setup.startswith("hook:")}
    assert len(hooks) == 7  # every notification hook
