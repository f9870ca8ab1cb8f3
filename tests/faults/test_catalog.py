"""docs/faults.md is generated from this catalog (tests/test_generated_docs.py checks that it
is current): the catalog covers every class of fault, once each."""

from __future__ import annotations

from catalog import FAULTS


def test_fault_ids_are_unique_and_every_class_is_covered() -> None:
    ids = [f.id for f in FAULTS]
    assert len(ids) == len(set(ids))
    kinds = {f.kind for f in FAULTS}
    assert {"integrity", "contained", "hooks", "config", "dry-run", "local files"} <= kinds
    hooks = {f.setup.split(":")[1] for f in FAULTS if f.setup and f.setup.startswith("hook:")}
    assert len(hooks) == 7  # every notification hook
