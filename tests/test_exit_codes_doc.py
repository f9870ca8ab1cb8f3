"""The exit-code table is written once (``invarlock.core.errors``) and copied into the docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from invarlock.core.errors import EXIT_CODES, exit_code_table

REPO = Path(__file__).resolve().parents[1]


def test_docs_carry_the_current_exit_code_table() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_exit_codes.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for doc in ("cli.md", "hooks.md"):
        assert exit_code_table() in (REPO / "docs" / doc).read_text(encoding="utf-8")


def test_one_code_per_cause() -> None:
    codes = [e.code for e in EXIT_CODES]
    assert len(codes) == len(set(codes)) == 7
    assert {e.code for e in EXIT_CODES} == {0, 1, 2, 3, 4, 130, 143}
