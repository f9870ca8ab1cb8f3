"""The hook contract documents itself: a test fails when a hook is undocumented."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import invarlock
from invarlock import hookspecs

REPO = Path(__file__).resolve().parents[1]

SPECS = {
    n: f for n, f in vars(hookspecs).items() if n.startswith("invarlock_") and inspect.isfunction(f)
}


def test_markers_are_exported_for_the_invarlock_project() -> None:
    assert invarlock.hookspec.project_name == "invarlock"
    assert invarlock.hookimpl.project_name == "invarlock"


def test_the_contract_has_the_hooks_the_pipeline_needs() -> None:
    assert {
        "invarlock_register_guards",
        "invarlock_register_adapters",
        "invarlock_configure",
        "invarlock_run_start",
        "invarlock_load_model",
        "invarlock_model_loaded",
        "invarlock_guard_prepare",
        "invarlock_edit_applied",
        "invarlock_guard_validate",
        "invarlock_guard_result",
        "invarlock_report",
        "invarlock_run_finish",
    } <= set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_spec_is_typed_and_documented(name: str) -> None:
    func = SPECS[name]
    signature = inspect.signature(func)
    assert signature.return_annotation is not inspect.Signature.empty, name
    for parameter in signature.parameters.values():
        assert parameter.annotation is not inspect.Parameter.empty, f"{name}({parameter.name})"
    doc = inspect.getdoc(func) or ""
    assert ":return:" in doc, f"{name}: say what it returns and how results combine"
    assert doc.splitlines()[-1].startswith("Local plugin files:"), name
    for parameter in signature.parameters:
        assert f":param {parameter}:" in doc, f"{name}: document {parameter}"


@pytest.mark.parametrize(
    ("name", "firstresult"),
    [
        ("invarlock_load_model", True),
        ("invarlock_guard_prepare", True),
        ("invarlock_guard_validate", True),
        ("invarlock_configure", False),
        ("invarlock_register_guards", False),
    ],
)
def test_result_combination(name: str, firstresult: bool) -> None:
    opts = SPECS[name].invarlock_spec
    assert opts["firstresult"] is firstresult
    doc = " ".join((SPECS[name].__doc__ or "").split())
    assert ("First non-``None`` result wins" in doc) is firstresult


def test_hookspecs_is_the_top_level_package_mapped_into_invarlock() -> None:
    from pathlib import Path

    assert Path(hookspecs.__file__).parent.name == "hookspecs"


def test_the_generated_hook_reference_has_not_drifted() -> None:
    """Regenerate with ``python -m invarlock.plugins.reference --write docs/hooks.md``."""
    from invarlock.plugins.reference import render, splice

    document = (REPO / "docs" / "hooks.md").read_text()
    assert splice(document, render()) == document, (
        "docs/hooks.md is out of date: run python -m invarlock.plugins.reference "
        "--write docs/hooks.md"
    )


def test_the_reference_names_every_field_of_the_objects_hooks_receive() -> None:
    import dataclasses

    from invarlock.core.context import RunContext
    from invarlock.core.guard_context import ValidateContext
    from invarlock.core.results import GuardOutcome

    reference = (REPO / "docs" / "hooks.md").read_text()
    for cls in (RunContext, GuardOutcome):
        for field in dataclasses.fields(cls):
            assert f"| `{field.name}` |" in reference, f"{cls.__name__}.{field.name}"
    for key in ValidateContext.__annotations__:
        assert f"| `{key}` |" in reference
    assert "duration_s" in (GuardOutcome.__doc__ or "")
    doc = SPECS["invarlock_guard_result"].__doc__ or ""
    assert "``duration_s``" in doc and "duration)" not in doc
