"""Resolve a config against the loaded plugins, before any model is touched.

Everything that can be checked without loading the model is checked here: the adapter and
its options, the edit and its parameters, every guard in ``guards.order`` and its YAML block.
Options are checked against their declaration (:mod:`invarlock.core.options`): the values
the plan holds are coerced to the declared types. The result is what ``invarlock run
--dry-run`` prints and what the runner executes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from invarlock.core.errors import ConfigError, InvarlockError
from invarlock.core.options import (
    accepts_any_keyword,
    check_block,
    constructor_options,
    declared_options,
)
from invarlock.plugins.manager import PluginManager
from invarlock.plugins.records import Kind
from invarlock.runner.config import RunConfig

#: The ``schema`` key of ``invarlock run --dry-run --json`` (see ``invarlock/reports/schemas``).
PLAN_SCHEMA = "invarlock.plan/v1"


@dataclass
class GuardPlan:
    name: str
    origin: str
    plugin: str
    class_path: str | None
    options: dict[str, Any]  # what the constructor receives (the YAML block)
    effective: dict[str, Any]  # defaults merged with the YAML block, for display

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "origin": self.origin,
            "plugin": self.plugin,
            "class": self.class_path,
            "options": self.options,
            "effective_options": self.effective,
        }


@dataclass
class RunPlan:
    model_id: str
    adapter: str  # as configured
    adapter_resolved: str
    device: str
    model_options: dict[str, Any]
    edit_name: str
    edit_params: dict[str, Any]
    edit: Any = field(repr=False)  # the Edit implementation
    edit_config: Any = field(repr=False)  # its parsed, validated configuration
    guards: list[GuardPlan]
    skipped: list[dict[str, str]]
    export_formats: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": {
                "id": self.model_id,
                "adapter": self.adapter,
                "adapter_resolved": self.adapter_resolved,
                "device": self.device,
                "options": self.model_options,
            },
            "edit": {"name": self.edit_name, "params": self.edit_params},
            "guards": [g.to_dict() for g in self.guards],
            "skipped_guards": self.skipped,
            "export": {"formats": self.export_formats},
        }


def build_plan(config: RunConfig, manager: PluginManager) -> RunPlan:
    """Check ``config`` against ``manager``'s plugins; raise with the key path on problems."""
    try:
        adapter = manager.resolve_adapter(config.model.adapter, config.model.id)
    except ConfigError as exc:
        raise config.error("model.adapter", str(exc)) from None
    model_options = _model_options(config, manager, adapter)

    edit, edit_config = _resolve_edit(config)
    _check_export(config, edit, edit_config)
    guards = [
        _resolve_guard(config, manager, index, name)
        for index, name in enumerate(config.guards.order)
    ]

    for name in config.guards.blocks:
        if not manager.find(Kind.GUARD, name):
            known = ", ".join(manager.names(Kind.GUARD, usable_only=False))
            raise config.error(
                f"guards.{name}", f"options for unknown guard {name!r}; known guards: {known}"
            )
    skipped = [
        {"name": name, "reason": "skipped: not in guards.order"}
        for name in manager.names(Kind.GUARD)
        if name not in config.guards.order
    ]
    return RunPlan(
        model_id=config.model.id,
        adapter=config.model.adapter,
        adapter_resolved=adapter,
        device=config.model.device,
        model_options=model_options,
        edit_name=config.edit.name,
        edit_params=dict(config.edit.params),
        edit=edit,
        edit_config=edit_config,
        guards=guards,
        skipped=skipped,
        export_formats=list(config.output.formats),
    )


def _check_export(config: RunConfig, edit: Any, edit_config: Any) -> None:
    """Refuse, before anything is loaded, a format that cannot hold this edit."""
    from invarlock.core.edit import export_form
    from invarlock.exporters import refusals

    codes = export_form(edit, edit_config)
    for name, reason in refusals(config.output.formats, codes).items():
        raise config.error("output.format", f"format {name!r} cannot hold this edit: {reason}")


def _model_options(config: RunConfig, manager: PluginManager, adapter: str) -> dict[str, Any]:
    """The ``model:`` options checked against the adapter's ``load_model`` declaration
    (keys it does not declare pass through when it takes ``**kwargs``)."""
    record = manager.require(Kind.ADAPTER, adapter)
    if record.cls is None:
        return dict(config.model.options)
    load = record.cls.load_model
    declared = declared_options(load, skip=("model_id", "device"))
    try:
        return check_block(
            config.model.options,
            declared,
            "model",
            unknown=f"unknown option for adapter {adapter!r}; it accepts: {{typed}}",
            open_keys=accepts_any_keyword(load),
        )
    except ConfigError as exc:
        raise config.locate(exc) from None


def _resolve_edit(config: RunConfig) -> tuple[Any, Any]:
    from invarlock.edits import EditConfigError, get_edit

    try:
        edit = get_edit(config.edit.name)
        return edit, edit.parse(config.edit.params)
    except EditConfigError as exc:
        if exc.key_path is None:
            raise config.error("edit", exc.problem) from None
        raise config.locate(exc) from None


def _resolve_guard(config: RunConfig, manager: PluginManager, index: int, name: str) -> GuardPlan:
    key = f"guards.order[{index}]"
    try:
        record = manager.require(Kind.GUARD, name)
    except ConfigError as exc:
        raise config.error(key, str(exc)) from None
    except InvarlockError as exc:
        raise type(exc)(f"{config.where(key)}: {exc}") from None
    assert record.cls is not None
    declared = constructor_options(record.cls)
    block = dict(config.guards.blocks.get(name, {}))
    if "tier" in {o.name for o in declared} and "tier" not in block:
        block["tier"] = config.guards.tier  # guards.tier reaches every guard taking a tier
    try:
        options = check_block(
            block,
            declared,
            f"guards.{name}",
            unknown=f"unknown option for guard {name!r}; it accepts: {{typed}}",
            open_keys=accepts_any_keyword(record.cls.__init__),
        )
    except ConfigError as exc:
        raise config.locate(exc) from None
    effective = {o.name: o.default for o in declared if not o.required}
    effective.update(options)
    return GuardPlan(
        name=name,
        origin=record.origin.value,
        plugin=record.plugin.name,
        class_path=record.class_path,
        options=options,
        effective=effective,
    )
