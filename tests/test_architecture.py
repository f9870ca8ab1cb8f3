"""The import rule between layers (docs/architecture.md): a module imports only its own
layer and the layers :data:`LAYERS` lists under it.

Every import counts: module level, inside functions, under ``if TYPE_CHECKING:`` and
``importlib.import_module("invarlock....")`` with a literal name. Known exceptions are in
:data:`ALLOWED`, each with its reason; an exception that no longer occurs fails the test, so
the list only shrinks.
"""

from __future__ import annotations

import ast
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: layer → (its packages, the lower layers it may import). Bottom first. A module's package is
#: the name after ``invarlock.``; ``invarlock`` itself is the package root (version, markers,
#: lazy exports). Packages in one layer may import each other.
LAYERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "contract": (("invarlock", "_markers", "hookspecs", "core"), ()),
    "components": (
        ("models", "adapters", "data", "evaluation", "edits", "guards", "exporters"),
        ("contract",),
    ),
    "plugins": (("plugins",), ("contract", "components")),
    "runner": (("runner",), ("contract", "components", "plugins")),
    "front ends": (
        ("cli", "reports", "testing", "__main__"),
        ("contract", "components", "plugins", "runner"),
    ),
}

#: (importing module, imported module) → why it is allowed for now. Each is a debt.
ALLOWED: dict[tuple[str, str], str] = {
    # The runner writes report.html itself; it should be a report-hook plugin of reports.
    ("invarlock.runner.runner", "invarlock.reports.page"): "write_run_page after a run",
}


@dataclass(frozen=True)
class Import:
    """One import of an invarlock module by another."""

    importer: str
    imported: str
    line: int


def package_of(module: str) -> str:
    """``invarlock.guards.rmt`` → ``guards``; ``invarlock`` → ``invarlock``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(module: str, layers: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]) -> str:
    package = package_of(module)
    for layer, (packages, _) in layers.items():
        if package in packages:
            return layer
    raise AssertionError(f"{module}: package {package!r} is in no layer of LAYERS")


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(module: str, source: str, is_package: bool = False) -> Iterator[Import]:
    """Every invarlock module ``source`` imports, wherever the import statement stands."""
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node)
            # ``from invarlock import hookspecs`` imports the submodule, not the root
            targets = [
                f"{base}.{alias.name}" if base == "invarlock" and alias.name in SUBMODULES else base
                for alias in node.names
            ]
        elif isinstance(node, ast.Call) and _is_import_module(node):
            targets = [node.args[0].value]  # type: ignore[attr-defined]
        for target in targets:
            if target == "invarlock" or target.startswith("invarlock."):
                yield Import(module, target, node.lineno)


def _is_import_module(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return (
        name == "import_module"
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def source_modules(src: Path, hookspecs: Path) -> dict[str, tuple[str, bool]]:
    """``module name → (source, is_package)`` for the package and the hook contract."""
    modules: dict[str, tuple[str, bool]] = {}
    roots = [(src / "invarlock", "invarlock"), (hookspecs, "invarlock.hookspecs")]
    for root, prefix in roots:
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            modules[".".join([prefix, *parts])] = (path.read_text("utf-8"), is_package)
    return modules


SUBMODULES = {
    name.split(".")[1]
    for name in source_modules(REPO / "src", REPO / "hookspecs")
    if name.count(".") >= 1
}


def violations(
    modules: Mapping[str, tuple[str, bool]],
    layers: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = LAYERS,
) -> list[Import]:
    """The imports that break the rule (the allow-list is not applied here)."""
    found = []
    for module, (source, is_package) in modules.items():
        mine = layer_of(module, layers)
        allowed = {mine, *layers[mine][1]}
        for imported in imports_of(module, source, is_package):
            if layer_of(imported.imported, layers) not in allowed:
                found.append(imported)
    return found


def _describe(found: Iterable[Import]) -> list[str]:
    return [
        f"{i.importer}:{i.line} imports {i.imported} "
        f"({layer_of(i.importer, LAYERS)} → {layer_of(i.imported, LAYERS)})"
        for i in found
    ]


def test_every_module_imports_by_the_layer_rule() -> None:
    found = violations(source_modules(REPO / "src", REPO / "hookspecs"))
    unexpected = [i for i in found if (i.importer, i.imported) not in ALLOWED]
    assert _describe(unexpected) == [], "see docs/architecture.md (import rule)"
    stale = set(ALLOWED) - {(i.importer, i.imported) for i in found}
    assert stale == set(), "these imports are gone: remove them from ALLOWED"


def test_every_package_is_in_exactly_one_layer() -> None:
    packages = [p for packages, _ in LAYERS.values() for p in packages]
    assert len(packages) == len(set(packages))
    present = {package_of(m) for m in source_modules(REPO / "src", REPO / "hookspecs")}
    assert present <= set(packages), f"add {present - set(packages)} to LAYERS"
    names = list(LAYERS)
    for index, (_, lower) in enumerate(LAYERS.values()):
        assert set(lower) <= set(names[:index]), "a layer may import only layers below it"


def test_the_architecture_doc_shows_the_layer_table() -> None:
    text = (REPO / "docs" / "architecture.md").read_text("utf-8")
    rows = re.findall(r"^\| (\w[\w ]*?) \| (.+?) \| (.+?) \|$", text, flags=re.MULTILINE)
    table = {
        layer: (
            tuple(re.findall(r"`([\w.]+)`", packages)),
            tuple(x.strip() for x in lower.split(",")) if lower.strip() != "—" else (),
        )
        for layer, packages, lower in rows
        if layer in LAYERS
    }
    assert table == LAYERS, "docs/architecture.md's layer table differs from LAYERS"


# --------------------------------------------------------------------------- the checker


def _check(source: str, module: str) -> list[str]:
    return [i.imported for i in violations({module: (source, False)})]


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("invarlock.core.x", "from invarlock.runner.config import RunConfig\n", ["runner"]),
        ("invarlock.core.x", "import invarlock.plugins.manager\n", ["plugins"]),
        (  # inside a function
            "invarlock.guards.x",
            "def f():\n    from invarlock.cli import main\n    return main\n",
            ["cli"],
        ),
        (  # under TYPE_CHECKING
            "invarlock.edits.x",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from invarlock.runner.runner import Runner\n",
            ["runner"],
        ),
        (  # by name, through importlib
            "invarlock.adapters.x",
            "import importlib\nimportlib.import_module('invarlock.reports.page')\n",
            ["reports"],
        ),
        ("invarlock.hookspecs", "from invarlock.plugins import PluginManager\n", ["plugins"]),
        ("invarlock.plugins.x", "from invarlock import hookspecs\n", []),
        ("invarlock.guards.x", "from invarlock import hookimpl\n", []),
        ("invarlock.guards.x", "from invarlock.core.evaluator import Evaluator\n", []),
        ("invarlock.cli.x", "from invarlock.runner.runner import Runner\n", []),
        ("invarlock.runner.x", "from invarlock.edits import get_edit\n", []),
    ],
)
def test_the_checker_on_synthetic_modules(module: str, source: str, expected: list[str]) -> None:
    assert [package_of(m) for m in _check(source, module)] == expected


def test_relative_imports_are_resolved() -> None:
    found = violations({"invarlock.core.x": ("from ..runner import config\n", False)})
    assert [i.imported for i in found] == ["invarlock.runner"]


def test_an_injected_violation_in_a_copy_of_the_tree_fails(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "invarlock", src / "invarlock")
    shutil.copytree(REPO / "hookspecs", tmp_path / "hookspecs")
    errors = src / "invarlock" / "core" / "errors.py"
    errors.write_text(
        errors.read_text() + "\n\ndef _sneaky():\n    from invarlock.cli import main\n"
    )
    found = violations(source_modules(src, tmp_path / "hookspecs"))
    unexpected = [i for i in found if (i.importer, i.imported) not in ALLOWED]
    assert [(i.importer, i.imported) for i in unexpected] == [
        ("invarlock.core.errors", "invarlock.cli")
    ]
