"""Every place the docs show a hook's arguments agrees with its spec's full signature.

The spec side is :func:`inspect.signature` of each function in ``invarlock.hookspecs``: names,
order, kinds, annotations (as the source writes them) and defaults. The docs side is every
``invarlock_<hook>(...)`` in the Markdown docs, parsed as Python:

- a signature with annotations or a return type (``docs/hooks.md``'s reference) must equal the
  spec exactly;
- a bare mention in prose (``invarlock_register_evaluators(register)``) must name exactly the
  spec's arguments, in order;
- an implementation (``def invarlock_x(...)`` or ``invarlock_x = lambda ...:``) may take any
  subset of the spec's arguments (pluggy passes by name), in the spec's order, with the spec's
  annotations where it writes one.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from invarlock import hookspecs

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted(
    [*REPO.glob("docs/*.md"), REPO / "README.md", *REPO.glob("contrib/*/README.md")],
)

SPECS = {
    n: f for n, f in vars(hookspecs).items() if n.startswith("invarlock_") and inspect.isfunction(f)
}

#: ``name(`` or ``def name(`` or ``name = lambda``; the argument list is read by :func:`_mentions`.
_MENTION = re.compile(r"(?P<def>\bdef\s+)?\b(?P<name>invarlock_\w+)(?:\(|\s*=\s*lambda\b)")


@dataclass(frozen=True)
class Arg:
    """One parameter as text: what the spec and the docs are compared on."""

    name: str
    kind: str  # "positional or keyword", "keyword-only", ...
    annotation: str | None
    default: str | None


@dataclass(frozen=True)
class Shown:
    """A hook signature as the docs show it."""

    where: str  # path:line
    name: str
    form: str  # "signature", "mention" or "implementation"
    args: tuple[Arg, ...]
    returns: str | None


def spec_args(name: str) -> tuple[tuple[Arg, ...], str | None]:
    """The spec's parameters and return annotation, from :func:`inspect.signature`."""
    signature = inspect.signature(SPECS[name])

    def text(value: object) -> str | None:
        if value is inspect.Parameter.empty:
            return None
        return value if isinstance(value, str) else ast.unparse(ast.parse(repr(value)))

    args = tuple(
        Arg(p.name, p.kind.description, text(p.annotation), text(p.default))
        for p in signature.parameters.values()
    )
    return args, text(signature.return_annotation)


def _balanced(text: str, start: int) -> int:
    """Index just past the ``)`` closing the ``(`` at ``start``."""
    depth = 0
    for index in range(start, len(text)):
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return index + 1
    return len(text)


def _args_of(node: ast.arguments) -> tuple[Arg, ...]:
    kinds = [
        (node.posonlyargs, "positional-only"),
        (node.args, "positional or keyword"),
        (node.kwonlyargs, "keyword-only"),
    ]
    positional = [*node.posonlyargs, *node.args]
    with_default = positional[len(positional) - len(node.defaults) :]
    defaults = dict(zip(with_default, node.defaults, strict=True))
    pairs = zip(node.kwonlyargs, node.kw_defaults, strict=True)
    defaults.update((a, d) for a, d in pairs if d is not None)
    args = []
    for group, kind in kinds:
        for arg in group:
            annotation = ast.unparse(arg.annotation) if arg.annotation else None
            default = ast.unparse(defaults[arg]) if arg in defaults else None
            args.append(Arg(arg.arg, kind, annotation, default))
    for arg, kind in ((node.vararg, "variadic positional"), (node.kwarg, "variadic keyword")):
        if arg is not None:
            annotation = ast.unparse(arg.annotation) if arg.annotation else None
            args.append(Arg(arg.arg, kind, annotation, None))
    return tuple(args)


def parse_shown(text: str, where: str = "<text>") -> Iterator[Shown]:
    """Every hook signature ``text`` shows; a mention that does not parse is an error."""
    for match in _MENTION.finditer(text):
        name = match["name"]
        if name not in SPECS and not match["def"]:
            continue  # a fixture or file name (invarlock_project(...)), not a hook
        line = text.count("\n", 0, match.start()) + 1
        here = f"{where}:{line}"
        if match.group(0).endswith("lambda"):
            colon = text.index(":", match.end())
            source = f"lambda {text[match.end() : colon]}: None"
            node = ast.parse(source, mode="eval").body
            assert isinstance(node, ast.Lambda)
            yield Shown(here, name, "implementation", _args_of(node.args), None)
            continue
        close = _balanced(text, match.end() - 1)
        rest = re.match(r"\s*->\s*([^:\n`]+)", text[close:])
        returns = rest[1].strip() if rest else None
        source = f"def {name}{text[match.end() - 1 : close]}" + (f" -> {returns}" if rest else "")
        try:
            node = ast.parse(source + ": ...").body[0]
        except SyntaxError as exc:
            raise AssertionError(f"{here}: cannot read the signature {source!r}: {exc}") from exc
        assert isinstance(node, ast.FunctionDef)
        args = _args_of(node.args)
        if match["def"]:
            form = "implementation"
        elif returns is not None or any(a.annotation for a in args):
            form = "signature"
        else:
            form = "mention"
        yield Shown(here, name, form, args, returns)


def problems(shown: Shown) -> list[str]:
    """What is wrong with ``shown`` against its spec (empty: it agrees)."""
    if shown.name not in SPECS:
        return [f"{shown.where}: {shown.name} is not a hook in invarlock.hookspecs"]
    args, returns = spec_args(shown.name)
    where = f"{shown.where}: {shown.name}"
    if shown.form == "signature":
        found = []
        if shown.args != args:
            found.append(f"{where} shows arguments {shown.args}, the spec has {args}")
        if shown.returns != returns:
            found.append(f"{where} shows return {shown.returns!r}, the spec has {returns!r}")
        return found
    names = [a.name for a in args]
    shown_names = [a.name for a in shown.args]
    if shown.form == "mention":
        if shown_names == names:
            return []
        return [f"{where}({', '.join(shown_names)}): the spec has {names}"]
    by_name = {a.name: a for a in args}
    found = [f"{where}: no argument {n!r} (spec: {names})" for n in shown_names if n not in by_name]
    if not found and shown_names != [n for n in names if n in shown_names]:
        found.append(f"{where}: arguments {shown_names} are not in the spec's order {names}")
    for arg in shown.args:
        spec = by_name.get(arg.name)
        if spec is not None and arg.annotation is not None and arg.annotation != spec.annotation:
            found.append(f"{where}: {arg.name}: {arg.annotation}, spec says {spec.annotation}")
    return found


def all_shown() -> list[Shown]:
    return [
        shown
        for path in DOCS
        if path.is_file()
        for shown in parse_shown(path.read_text("utf-8"), str(path.relative_to(REPO)))
    ]


def test_every_hook_signature_the_docs_show_matches_its_spec() -> None:
    shown = all_shown()
    assert [p for s in shown for p in problems(s)] == []
    reference = {s.name for s in shown if s.form == "signature" and "hooks.md" in s.where}
    assert reference == set(SPECS), "docs/hooks.md shows every hook's full signature"


def test_the_docs_show_implementations_and_mentions_too() -> None:
    forms = {s.form for s in all_shown()}
    assert forms == {"signature", "mention", "implementation"}


def _hooks_md() -> str:
    return (REPO / "docs" / "hooks.md").read_text("utf-8")


@pytest.mark.parametrize(
    ("right", "wrong"),
    [
        (  # two arguments swapped
            "invarlock_guard_result(run: RunContext, outcome: GuardOutcome) -> None",
            "invarlock_guard_result(outcome: GuardOutcome, run: RunContext) -> None",
        ),
        (  # an annotation changed
            "invarlock_run_finish(run: RunContext, status: str, exit_code: int) -> None",
            "invarlock_run_finish(run: RunContext, status: str, exit_code: str) -> None",
        ),
        (  # an argument missing
            "invarlock_report(run: RunContext, report: RunReport, run_dir: Path) -> None",
            "invarlock_report(run: RunContext, report: RunReport) -> None",
        ),
        (  # a default the spec does not have
            "invarlock_edit_applied(run: RunContext, result: EditResult) -> None",
            "invarlock_edit_applied(run: RunContext, result: EditResult = None) -> None",
        ),
        (  # the return type
            "invarlock_run_start(run: RunContext) -> None",
            "invarlock_run_start(run: RunContext) -> bool",
        ),
    ],
)
def test_a_wrong_signature_in_a_copy_of_the_reference_fails(right: str, wrong: str) -> None:
    original = _hooks_md()
    assert right in original
    mutated = original.replace(right, wrong)
    found = [p for s in parse_shown(mutated, "hooks.md") for p in problems(s)]
    assert found and all(wrong.split("(")[0] in problem for problem in found)


@pytest.mark.parametrize(
    "text",
    [
        "the `invarlock_register_evaluators(register, extra)` hook",  # a mention, one too many
        "the `invarlock_guard_result(outcome, run)` hook",  # a mention, wrong order
        "def invarlock_guard_result(run, result):\n    pass\n",  # an argument the spec lacks
        "def invarlock_guard_validate(model, guard_name):\n    pass\n",  # out of order
        "def invarlock_guard_result(run: int):\n    pass\n",  # a wrong annotation
        "hooks.invarlock_edit_applied = lambda run, outcome: None\n",  # lambda, wrong name
        "def invarlock_guard_results(run, outcome):\n    pass\n",  # no such hook
    ],
)
def test_wrong_mentions_and_implementations_fail(text: str) -> None:
    assert [p for s in parse_shown(text) for p in problems(s)] != []


@pytest.mark.parametrize(
    "text",
    [
        "the `invarlock_register_evaluators(register)` hook",
        "def invarlock_guard_validate(guard_name):\n    pass\n",
        "def invarlock_guard_validate(guard_name, context):\n    pass\n",
        "hooks.invarlock_edit_applied = lambda run, result: None\n",
        "invarlock_project(config=None, plugins=None)",  # the fixture, not a hook
    ],
)
def test_right_mentions_and_implementations_pass(text: str) -> None:
    assert [p for s in parse_shown(text) for p in problems(s)] == []
