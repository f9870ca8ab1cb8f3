"""The plugin listing as data: one record per component, built once, rendered by the CLI
as tables or printed as one JSON document (schema ``invarlock.plugins/v1``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from invarlock import __version__
from invarlock.core.introspect import constructor_parameters, parameters
from invarlock.plugins.manager import PluginManager
from invarlock.plugins.records import JSON_SCHEMA, KIND_ORDER, ComponentRecord, Kind


def option_parameters(record: ComponentRecord) -> list[Any]:
    """The options a user can set for a component (guard constructor, adapter load_model)."""
    if record.cls is None:
        return []
    if record.kind is Kind.ADAPTER:
        return parameters(record.cls.load_model, skip=("model_id", "device"))
    return constructor_parameters(record.cls)


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
