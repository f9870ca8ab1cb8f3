"""The component registry: the guard, adapter and evaluator classes the plugins register.

Each ready plugin is asked, on its own, for its classes through the ``invarlock_register_*``
hooks (built-ins included: they are plugins too). Every class is checked (subclass of the
right base, a name, its ``requires`` installed, not abstract) and then constructed once
from its defaults: the listing tells the truth because the class really was built, and that
instance is the one the runs use (see :mod:`invarlock.plugins.bindings`). Two plugins
providing one name is an error naming both, and neither is used.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pluggy

from invarlock.core.api import Guard, ModelAdapter
from invarlock.core.errors import ConfigError, ModelLoadError, PluginError
from invarlock.core.evaluator import Evaluator
from invarlock.plugins.bindings import AdapterBinding, ClassEntryPoint, GuardBinding
from invarlock.plugins.discovery import (
    ADAPTER_GROUP,
    EDIT_GROUP,
    EVALUATOR_GROUP,
    GUARD_GROUP,
    HOOKS_GROUP,
)
from invarlock.plugins.loading import hooks_of
from invarlock.plugins.records import ComponentRecord, Kind, Origin, PluginInfo, Status
from invarlock.plugins.wording import (
    definition,
    one_line_error,
    provider,
    status_words,
    summary,
)

log = logging.getLogger("invarlock.plugins")

_GROUP_KIND = {
    GUARD_GROUP: Kind.GUARD,
    ADAPTER_GROUP: Kind.ADAPTER,
    HOOKS_GROUP: Kind.HOOKS,
    EDIT_GROUP: Kind.EDIT,
    EVALUATOR_GROUP: Kind.EVALUATOR,
}
_BASES: dict[Kind, type] = {
    Kind.GUARD: Guard,
    Kind.ADAPTER: ModelAdapter,
    Kind.EVALUATOR: Evaluator,
}
_REGISTER_HOOKS = {
    Kind.GUARD: "invarlock_register_guards",
    Kind.ADAPTER: "invarlock_register_adapters",
    Kind.EVALUATOR: "invarlock_register_evaluators",
}


class Registry:
    """Components by kind and name, each with the truth about it (see the module docstring)."""

    def __init__(self, pm: pluggy.PluginManager, block_reasons: Mapping[str, str]) -> None:
        self._pm = pm
        self._block_reasons = block_reasons
        self.components: list[ComponentRecord] = []
        self.bindings: dict[tuple[Kind, str], GuardBinding | AdapterBinding] = {}

    def collect(self, plugins: list[PluginInfo]) -> None:
        """Ask each ready plugin for its classes; a plugin that could not be registered gets
        a row of its own with the reason. Then refuse clashes and bind what is usable."""
        for info in plugins:
            if info.obj is None:
                self._row(_GROUP_KIND.get(info.group or "", Kind.HOOKS), info.name, info)
        ready = [info for info in plugins if info.obj is not None]
        for info in ready:
            others = [p.obj for p in ready if p is not info]
            for kind, hook_name in _REGISTER_HOOKS.items():
                caller = self._pm.subset_hook_caller(hook_name, remove_plugins=others)
                try:
                    caller(register=self._registrar(info, kind))
                except Exception as exc:
                    info.fail(Status.ERROR, f"{hook_name} raised {one_line_error(exc)}")
                    for record in self.components:
                        if record.plugin is info:
                            record.fail(Status.ERROR, f"plugin {info.name!r} failed: {info.detail}")
            if info.origin is not Origin.BUILTIN and not isinstance(info.obj, ClassEntryPoint):
                record = self._row(Kind.HOOKS, info.name, info)
                record.hooks, record.summary = info.hooks, summary(info.obj)
        self._refuse_clashes()
        self._bind()

    # ------------------------------------------------------------------ registration

    def _row(
        self, kind: Kind, name: str, info: PluginInfo, cls: type | None = None
    ) -> ComponentRecord:
        record = ComponentRecord(kind=kind, name=name, plugin=info, cls=cls)
        if info.status is not Status.READY:
            record.fail(info.status, info.detail)
        self.components.append(record)
        return record

    def _registrar(self, info: PluginInfo, kind: Kind) -> Callable[..., None]:
        def register(cls: Any, name: str | None = None) -> None:
            self._register_class(info, kind, cls, name)

        return register

    def _register_class(self, info: PluginInfo, kind: Kind, cls: Any, name: str | None) -> None:
        is_class = isinstance(cls, type)
        class_name = getattr(cls, "name", None) if is_class else None
        resolved = name or class_name or ""
        record = self._row(kind, resolved or repr(cls), info, cls if is_class else None)
        record.summary = summary(cls)
        record.backend = getattr(cls, "backend", None) if kind is Kind.ADAPTER else None
        record.version = getattr(cls, "version", None) or info.distribution_version
        record.hooks = list(info.hooks)
        blocked = self._block_reasons.get(resolved) if info.origin is Origin.BUILTIN else None
        if blocked:  # a built-in component is blocked by its own name, as before
            record.fail(Status.BLOCKED, blocked)
            return
        problem = _class_problem(kind, cls, resolved, class_name, info)
        if problem is not None:
            record.fail(*problem)
        else:
            try:
                record.instance = cls()
            except Exception as exc:
                record.fail(
                    Status.ERROR,
                    f"cannot be constructed from its defaults: {one_line_error(exc)}; "
                    f"{cls.__qualname__} is defined at {definition(cls)}",
                )
        log.debug("  %s %r from %s: %s", kind.value, resolved, info.name, record.status_text())

    def _refuse_clashes(self) -> None:
        """Two plugins providing one name is an error naming both; none of them is used."""
        by_name: dict[tuple[Kind, str], list[ComponentRecord]] = {}
        for record in self.components:
            if record.kind is not Kind.HOOKS and record.status is not Status.BLOCKED:
                by_name.setdefault((record.kind, record.name), []).append(record)
        for (kind, name), records in by_name.items():
            if len(records) > 1:
                providers = " and ".join(provider(r.plugin) for r in records)
                for record in records:
                    record.status = Status.ERROR
                    record.detail = f"name clash: {kind.value} {name!r} is provided by {providers}"

    def _bind(self) -> None:
        """Each usable guard and adapter becomes a plugin answering its hooks for its name."""
        for record in self.components:
            binding: GuardBinding | AdapterBinding
            if not record.usable or record.cls is None:
                continue
            if record.kind is Kind.GUARD:
                binding = GuardBinding(record.name, record.cls, record.instance)
            elif record.kind is Kind.ADAPTER:
                binding = AdapterBinding(record.name, record.instance)
            else:
                continue
            self._pm.register(binding, name=f"{record.kind.value}:{record.name}")
            self.bindings[(record.kind, record.name)] = binding
            record.hooks = sorted(
                {*record.hooks, *hooks_of(self._pm, binding)}, key=lambda h: h.hook
            )

    # ------------------------------------------------------------------ queries

    def iter(self, kind: Kind | None = None) -> Iterator[ComponentRecord]:
        return (r for r in self.components if kind is None or r.kind is kind)

    def find(self, kind: Kind, name: str) -> list[ComponentRecord]:
        return [r for r in self.components if r.kind is kind and r.name == name]

    def names(self, kind: Kind, *, usable_only: bool = True) -> list[str]:
        return sorted({r.name for r in self.iter(kind) if r.usable or not usable_only})

    def require(self, kind: Kind, name: str, broken: list[str], hint: str = "") -> ComponentRecord:
        """The usable component ``name``; unknown → ConfigError, unusable → PluginError.
        ``broken`` lists plugins that failed to load (one may have provided ``name``)."""
        records = self.find(kind, name)
        if not records:
            known = ", ".join(self.names(kind, usable_only=False)) or "none"
            if broken:
                raise PluginError(
                    f"{kind.value} {name!r} is not registered, and plugin(s) that may provide it "
                    f"failed to load: {'; '.join(broken)} (known {kind.value}s: {known})"
                )
            raise ConfigError(f"unknown {kind.value} {name!r}; known {kind.value}s: {known}{hint}")
        record = next((r for r in records if r.usable), records[0])  # blocked ones yield
        if record.status is Status.BLOCKED:
            raise PluginError(f"{kind.value} {name!r} is blocked ({record.detail})")
        if not record.usable:
            raise PluginError(f"{kind.value} {name!r} cannot be used: {record.status_text()}")
        return record

    def adapter_for(self, model_id: str) -> str:
        """The first usable adapter (plugins and local files before built-ins) whose
        ``can_load(model_id)`` is true, asked through its binding; else the built-in
        ``auto`` adapter, whose error says why nothing can load the id."""
        candidates = [r for r in self.iter(Kind.ADAPTER) if r.usable and r.name != "auto"]
        candidates.sort(key=lambda r: r.origin is Origin.BUILTIN)
        for record in candidates:
            binding = self.bindings[(Kind.ADAPTER, record.name)]
            assert isinstance(binding, AdapterBinding)
            try:
                if binding.can_load(model_id):
                    log.debug("adapter auto → %s for %s", record.name, model_id)
                    return record.name
            except Exception as exc:
                raise PluginError(
                    f"adapter {record.name!r}: can_load({model_id!r}) raised {one_line_error(exc)}"
                ) from exc
        if any(r.usable for r in self.find(Kind.ADAPTER, "auto")):
            return "auto"
        tried = ", ".join(r.name for r in candidates) or "none"
        raise ModelLoadError(f"no adapter can load {model_id!r} (asked: {tried})")

    def problems(self) -> list[str]:
        """One line per unusable component of a ready plugin (blocked ones excluded)."""
        return [
            f"{r.kind.value} {r.name!r}: {status_words(r.status, r.detail)}"
            for r in self.components
            if r.status in (Status.ERROR, Status.NEEDS) and r.plugin.status is Status.READY
        ]


def _class_problem(
    kind: Kind, cls: Any, resolved: str, class_name: str | None, info: PluginInfo
) -> tuple[Status, str] | None:
    """Why ``cls`` cannot be registered as ``kind`` ``resolved`` without constructing it."""
    base = _BASES[kind]
    if not isinstance(cls, type) or not issubclass(cls, base):
        what = f"{cls.__module__}.{cls.__qualname__}" if isinstance(cls, type) else repr(cls)
        return Status.ERROR, f"{what} is not a subclass of invarlock.core.api.{base.__name__}"
    if not resolved:
        return Status.ERROR, f'{cls.__qualname__} has no name: set `name = "..."` on it'
    if isinstance(info.obj, ClassEntryPoint) and class_name and class_name != resolved:
        return (
            Status.ERROR,
            f"entry point name {resolved!r} differs from {cls.__qualname__}.name {class_name!r}",
        )
    requires = getattr(cls, "requires", ())
    if isinstance(requires, str):
        return (
            Status.ERROR,
            f"{cls.__qualname__}.requires must be a tuple of import names, "
            f"not the string {requires!r} (write ({requires!r},))",
        )
    missing = [package for package in requires or () if not _installed(package)]
    if missing:
        return Status.NEEDS, ", ".join(missing)
    if inspect.isabstract(cls):
        abstract = ", ".join(sorted(cls.__abstractmethods__))
        return Status.ERROR, f"cannot be constructed: abstract method(s) {abstract}"
    return None


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False
