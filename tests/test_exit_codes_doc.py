"""The exit-code table is written once (``invarlock.core.errors``) and copied into the docs."""

from __future__ import annotations

from pathlib import Path

from invarlock.core.errors import EXIT_CODES, exit_code_table

REPO = Path(__file__).resolve().parents[1]


def test_docs_carry_the_current_exit_code_table() -> None:
    """scripts/gen_exit_codes.py copies it there; tests/test_generated_docs.py runs its --check."""
    for doc in ("cli.md", "hooks.md"):
        assert exit_code_table() in (REPO / "docs" / doc).read_text(encoding="utf-8")


def test_one_code_per_cause() -> None:
    codes = [e.code for e in EXIT_CODES]
    assert len(codes) == len(set(codes)) == 7
    assert {e.code for e in EXIT_CODES} == {0, 1, 2, 3, 4, 130, 143}
