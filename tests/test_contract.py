"""The plugin contract: leaf modules in ``invarlock.core``, re-exported lazily by ``invarlock``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import invarlock

REPO = Path(__file__).resolve().parents[1]
CONTRACT = ["Guard", "ModelAdapter", "GuardResult", "LoadedModel", "RunContext"]
CONTRACT += ["GuardOutcome", "EditResult", "RunReport", "Register", "hookimpl", "hookspec"]
#: Layers the contract must never import (also under TYPE_CHECKING).
FORBIDDEN = ("invarlock.runner", "invarlock.plugins", "invarlock.cli", "invarlock.edits")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (TYPE_CHECKING and function bodies too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize(
    "path",
    [REPO / "hookspecs" / "__init__.py", *sorted((REPO / "src/invarlock/core").glob("*.py"))],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_the_contract_imports_nothing_from_the_machinery(path: Path) -> None:
    bad = sorted(m for m in imported_modules(path) if m.startswith(FORBIDDEN))
    assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_every_contract_name_comes_from_the_package_root() -> None:
    import invarlock.core.api as api
    import invarlock.core.results as results

    namespace: dict[str, object] = {}
    exec(f"from invarlock import {', '.join(CONTRACT)}", namespace)
    assert namespace["Guard"] is api.Guard and namespace["GuardOutcome"] is results.GuardOutcome
    assert set(CONTRACT) <= set(invarlock.__all__) <= set(dir(invarlock))
    for name in invarlock.__all__:
        assert getattr(invarlock, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        invarlock.Nope  # noqa: B018


def test_importing_invarlock_stays_cheap() -> None:
    code = (
        "import json, sys, invarlock; from invarlock import Guard, RunContext, GuardOutcome; "
        "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'pluggy', 'numpy') "
        "if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []  # the markers (pluggy) load only when asked for


def test_the_hookspecs_type_their_register_callback() -> None:
    from invarlock import hookspecs

    annotation = hookspecs.invarlock_register_guards.__annotations__["register"]
    assert annotation == "Register[Guard]"


def edit_name_tests(path: Path) -> list[str]:
    """Places in ``path`` that ask which edit ran: a comparison with an edit's name, or an
    ``isinstance`` check against an edit's configuration class."""
    from invarlock.edits import EDITS

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) and o.value in EDITS for o in operands):
                found.append(f"{path.name}:{node.lineno} compares with an edit name")
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "isinstance"
            and "Config" in ast.unparse(node.args[1])
        ):
            found.append(f"{path.name}:{node.lineno} checks an edit's config class")
    return found


def test_the_runner_and_the_exporters_never_ask_which_edit_ran() -> None:
    files = [REPO / "src/invarlock/runner" / n for n in ("runner.py", "decision.py", "plan.py")]
    files += sorted((REPO / "src/invarlock/exporters").glob("*.py"))
    assert [hit for path in files for hit in edit_name_tests(path)] == []
