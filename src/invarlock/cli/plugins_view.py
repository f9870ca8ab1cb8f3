"""Rich rendering of the plugin listing: tables, verbose details and ``--explain``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import yaml
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from invarlock.core.options import Option
from invarlock.plugins.listing import option_parameters
from invarlock.plugins.records import ComponentRecord, Kind, Origin

if TYPE_CHECKING:
    from invarlock.plugins.manager import PluginManager

_TITLES = {
    Kind.ADAPTER: "Adapters",
    Kind.GUARD: "Guards",
    Kind.EDIT: "Edits",
    Kind.EVALUATOR: "Evaluators",
    Kind.HOOKS: "Hook plugins",
}
_DASH = "—"


def render_tables(
    console: Console, records: Sequence[ComponentRecord], kinds: Sequence[Kind]
) -> None:
    """One Markdown-style table per kind: Name · Origin · Kind · Backend · Version · Status."""
    for kind in kinds:
        rows = sorted((r for r in records if r.kind is kind), key=lambda r: r.name)
        if not rows:
            continue
        table = Table(title=_TITLES[kind], title_justify="left", box=box.MARKDOWN)
        for column in ("Name", "Origin", "Kind", "Backend", "Version", "Status"):
            table.add_column(column, overflow="fold")
        for r in rows:
            table.add_row(
                r.name,
                r.origin.label,
                r.kind.label,
                r.backend or _DASH,
                r.version or _DASH,
                Text(r.status_text()),
            )
        console.print(table)
        console.print()


def render_local_files(console: Console, manager: PluginManager) -> None:
    """``--verbose``: where local plugin files were searched, and what became of each."""
    selection = manager.selection
    if not selection.local_files or selection.local_start is None:
        console.print(Text("Local plugin files: off"))
        console.print()
        return
    root = manager.local_root or selection.local_start
    console.print(
        Text(f"Local plugin files (searched {selection.local_start} up to {root}):", style="bold")
    )
    local = [p for p in manager.plugins if p.origin is Origin.LOCAL]
    for info in local:
        state = "loaded" if info.obj is not None else info.detail or info.status.value
        console.print(Text(f"  {info.file}  {state}"))
    if not local:
        console.print(Text("  none found"))
    console.print()


def render_details(console: Console, records: Sequence[ComponentRecord]) -> None:
    """``--verbose``: module, entry point, distribution, file and hooks of each row."""
    for r in sorted(records, key=lambda r: (r.kind.value, r.name)):
        console.print(
            Text(f"{r.name} ({r.kind.label}, {r.origin.label}): {r.status_text()}", style="bold")
        )
        for label, value in _source_lines(r):
            console.print(Text(f"  {label:<13} {value}"))
        console.print()


def _source_lines(r: ComponentRecord) -> list[tuple[str, str]]:
    info = r.plugin
    if info is None:  # an edit: built in, from the edit registry
        return [("registry", "invarlock.edits.EDITS"), ("hooks", _DASH)]
    lines = [("plugin", info.name)]
    if r.class_path:
        lines.append(("class", r.class_path))
    if info.module:
        lines.append(("module", info.module))
    if info.entry_point:
        lines.append(("entry point", info.entry_point))
    if info.distribution:
        lines.append(("distribution", info.distribution_label or ""))
    if r.cls is not None or info.file:
        lines.append(("file", info.file or _class_file(r.cls)))
    if info.load_ms is not None:
        lines.append(("import", f"{info.load_ms:.1f} ms"))
    hooks = [h.hook + (f" [{', '.join(h.flags)}]" if h.flags else "") for h in r.hooks]
    lines.append(("hooks", ", ".join(hooks) if hooks else _DASH))
    return lines


def _class_file(cls: type | None) -> str:
    import inspect

    try:
        return inspect.getsourcefile(cls) or _DASH if cls is not None else _DASH
    except TypeError:
        return _DASH


def render_explain(
    console: Console, record: ComponentRecord, order: Sequence[str] | None = None
) -> None:
    """``--explain NAME``: docstring, options, a YAML snippet, hooks and provenance.

    ``order`` is the current ``guards.order`` (the config's, or the default); a guard's
    snippet appends the guard to it instead of replacing it."""
    import inspect

    console.print(
        Text(
            f"{record.name} — {record.kind.label} ({record.origin.label}): {record.status_text()}",
            style="bold",
        )
    )
    doc = inspect.getdoc(record.cls) if record.cls is not None else record.summary
    params = option_parameters(record)
    if params:
        doc = _without_args_section(doc or "")  # the Options table below shows them
    if doc:
        console.print()
        console.print(Text(doc))
    if record.kind is Kind.EDIT and record.cls is None and not params and record.detail:
        console.print(Text(f"  {record.detail}"))  # an unsupported invarlock.edits entry point
    console.print()
    console.print(Text(_OPTIONS_TITLES.get(record.kind, "Options"), style="bold"))
    if params:
        table = Table(box=box.SIMPLE, pad_edge=False)
        for column in ("Name", "Type", "Default", "Description"):
            table.add_column(column, overflow="fold")
        for p in params:
            cells = (p.name, p.annotation or _DASH, p.default_text(), p.help or _DASH)
            table.add_row(*(escape(cell) for cell in cells))  # `list[str]` is not markup
        console.print(table)
    else:
        console.print(Text("  (none)"))
    console.print(Text("YAML", style="bold"))
    console.print(Text(_yaml_snippet(record, params, order)))
    if record.kind is Kind.EDIT:
        return
    console.print(Text("Source", style="bold"))
    for label, value in _source_lines(record):
        console.print(Text(f"  {label:<13} {value}"))


_OPTIONS_TITLES = {Kind.ADAPTER: "load_model options", Kind.EDIT: "Parameters"}


def _yaml_value(p: Option) -> object:
    if p.required:
        return f"<{p.annotation or 'value'}>"
    if p.default is None or isinstance(p.default, (bool, int, float, str, list, dict)):
        return p.default
    return repr(p.default)


def _without_args_section(doc: str) -> str:
    """The docstring up to its ``Args:`` section (the options table renders that part)."""
    lines = doc.splitlines()
    for index, line in enumerate(lines):
        if line.strip() in ("Args:", "Arguments:", "Parameters:", "Options:"):
            return "\n".join(lines[:index]).rstrip()
    return doc


def _yaml_snippet(
    record: ComponentRecord, params: Sequence[Option], order: Sequence[str] | None = None
) -> str:
    from invarlock.runner.config import DEFAULT_GUARD_ORDER

    options = {p.name: _yaml_value(p) for p in params}
    if record.kind is Kind.GUARD:
        current = list(order if order is not None else DEFAULT_GUARD_ORDER)
        block: dict[str, object] = {
            "order": current if record.name in current else [*current, record.name]
        }
        if options:
            block[record.name] = options
        data: dict[str, object] = {"guards": block}
    elif record.kind is Kind.ADAPTER:
        data = {
            "model": {"adapter": record.name, "id": "<path or id>", "device": "auto", **options}
        }
    elif record.kind is Kind.EDIT:
        data = {"edit": {"name": record.name}}
    elif record.kind is Kind.EVALUATOR:
        data = {"eval": {"metric": record.name}}
    else:
        data = {"plugins": {"load": [record.plugin.name if record.plugin else record.name]}}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip()
