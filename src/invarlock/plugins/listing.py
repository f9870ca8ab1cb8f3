"""The plugin listing as data: one record per component, built once, rendered by the CLI
as tables or printed as one JSON document (schema ``invarlock.plugins/v1``).

Guards, adapters, evaluators and hook plugins come from the plugin manager; edits come from
the edit registry (:data:`invarlock.edits.EDITS`): they are built in, not plugins. An
``invarlock.edits`` entry point of a third-party distribution stays a row of its own, with
the error that says edits cannot be added.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

from invarlock import __version__
from invarlock.core.options import constructor_options, declared_options
from invarlock.plugins.manager import PluginManager
from invarlock.plugins.records import JSON_SCHEMA, KIND_ORDER, ComponentRecord, Kind, Status


def edit_records() -> list[ComponentRecord]:
    """One row per edit of the edit registry (they need torch to run)."""
    from invarlock.edits import EDITS

    torch_missing = importlib.util.find_spec("torch") is None
    records = []
    for edit in EDITS.values():
        record = ComponentRecord(kind=Kind.EDIT, name=edit.name, plugin=None)
        record.backend, record.summary = "torch", edit.summary
        if torch_missing:
            record.fail(Status.NEEDS, "torch")
        records.append(record)
    return records


def listing_records(
    manager: PluginManager, kinds: Sequence[Kind] = KIND_ORDER, hook: str | None = None
) -> list[ComponentRecord]:
    """The rows of ``invarlock plugins`` for ``kinds`` (only those implementing ``hook``)."""
    edits = edit_records() if Kind.EDIT in kinds else []
    records = [r for r in [*edits, *manager.components] if r.kind in kinds]
    if hook is not None:
        records = [r for r in records if hook in {h.hook for h in r.hooks}]
    return records


def option_parameters(record: ComponentRecord) -> list[Any]:
    """The options a user can set for a component, as declared (guard constructor, adapter
    ``load_model``, a built-in edit's option declaration)."""
    if record.kind is Kind.EDIT:
        from invarlock.edits.config import EDIT_OPTIONS

        return list(EDIT_OPTIONS.get(record.name, []))
    if record.cls is None:
        return []
    if record.kind is Kind.ADAPTER:
        return declared_options(record.cls.load_model, skip=("model_id", "device"))
    return constructor_options(record.cls)


def listing_document(
    manager: PluginManager, kinds: Sequence[Kind] = KIND_ORDER, hook: str | None = None
) -> dict[str, Any]:
    """The JSON document of ``invarlock plugins list --json`` (see docs/plugins.md)."""
    components = []
    for record in listing_records(manager, kinds, hook):
        entry = record.to_dict()
        entry["parameters"] = [p.to_dict() for p in option_parameters(record)]
        components.append(entry)
    components.sort(key=lambda c: (KIND_ORDER.index(Kind(c["kind"])), c["name"]))
    return {
        "schema": JSON_SCHEMA,
        "invarlock_version": __version__,
        "components": components,
        "plugins": [info.to_dict() for info in manager.plugins],
        "local_plugin_root": None if manager.local_root is None else str(manager.local_root),
        "problems": manager.problems(),
    }
