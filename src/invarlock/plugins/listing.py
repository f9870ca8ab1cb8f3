"""The plugin listing as data: one record per component, built once, rendered by the CLI
as tables or printed as one JSON document (schema ``invarlock.plugins/v1``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from invarlock import __version__
from invarlock.core.options import constructor_options, declared_options
from invarlock.plugins.manager import PluginManager
from invarlock.plugins.records import JSON_SCHEMA, KIND_ORDER, ComponentRecord, Kind


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
    for record in manager.components:
        if record.kind not in kinds:
            continue
        if hook is not None and hook not in {h.hook for h in record.hooks}:
            continue
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
