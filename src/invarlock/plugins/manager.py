"""The plugin manager: discovers, validates, registers and dispatches invarlock plugins.

A typed facade over :class:`pluggy.PluginManager`. It loads plugins in a documented order
(built-in entry points → third-party entry points → ``-p``/``INVARLOCK_PLUGINS``/config →
local plugin files), tells the truth about each (by importing it and constructing its
classes from their defaults), refuses name clashes, and offers one method per hook the
runner calls so no other code touches ``pm.hook`` with untyped keyword arguments.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from invarlock import hookspecs
from invarlock._markers import PROJECT_NAME
from invarlock.core.api import Guard, LoadedModel, ModelAdapter
from invarlock.core.errors import ConfigError, ModelLoadError, PluginError
from invarlock.core.evaluator import Evaluator
from invarlock.plugins.bindings import (
    AdapterBinding,
    AdapterEntryPoint,
    ClassEntryPoint,
    EvaluatorEntryPoint,
    GuardBinding,
    GuardEntryPoint,
)
from invarlock.plugins.discovery import (
    ADAPTER_GROUP,
    EDIT_GROUP,
    EVALUATOR_GROUP,
    GUARD_GROUP,
    HOOKS_GROUP,
    EntryPointSpec,
    Selection,
    find_local_plugin_files,
    iter_entry_points,
    local_plugin_name,
    untrusted_reason,
)
from invarlock.plugins.records import (
    ComponentRecord,
    HookImplInfo,
    Kind,
    Origin,
    PluginInfo,
    Status,
)
from invarlock.plugins.settings import debug_trace_enabled
from invarlock.plugins.tracing import HookMonitor
from invarlock.plugins.validation import HOOK_PREFIX, check_plugin, spec_arguments

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
_EDITS_NOT_SUPPORTED = (
    "not supported: plugins add adapters and guards, not edit algorithms "
    "(the built-in edits are quant_rtn and noop)"
)


class _PluggyManager(pluggy.PluginManager):
    """Also treats unmarked ``invarlock_*`` functions as hook implementations (as pytest
    does), so a typo in a plugin is caught by validation instead of silently ignored."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(HOOK_PREFIX):
            attr = inspect.getattr_static(plugin, name, None)
            if (
                inspect.isfunction(attr)
                or inspect.ismethod(attr)
                or isinstance(attr, (staticmethod, classmethod))
            ):
                return {
                    "wrapper": False,
                    "hookwrapper": False,
                    "optionalhook": False,
                    "tryfirst": False,
                    "trylast": False,
                    "specname": None,
                }
        return opts


def _one_line_error(exc: BaseException) -> str:
    """``Type: message (file:line)`` for the innermost frame of ``exc``."""
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" ({last.filename}:{last.lineno})"
    return text


def _missing_package(exc: ImportError, own_module: str | None) -> str | None:
    """The top-level package a plugin needs but that is not installed, if that is the cause."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    missing = exc.name.split(".")[0]
    own = (own_module or "").split(".")[0]
    return None if missing == own else missing


def _definition(cls: type) -> str:
    """``file:line`` of a class's definition (best effort)."""
    try:
        return f"{inspect.getsourcefile(cls)}:{inspect.getsourcelines(cls)[1]}"
    except (OSError, TypeError):
        return cls.__module__


def _missing_requirements(cls: type) -> list[str]:
    missing = []
    for package in getattr(cls, "requires", ()) or ():
        try:
            found = importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(package)
    return missing


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class PluginManager:
    """Discovers and dispatches invarlock plugins (see the module docstring)."""

    def __init__(self, selection: Selection | None = None) -> None:
        self.selection = selection or Selection.build()
        self.pm = _PluggyManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.specs = spec_arguments(hookspecs)
        self.monitor = HookMonitor(self.pm)
        if debug_trace_enabled():
            self.monitor.enable_trace()
        self.plugins: list[PluginInfo] = []
        self.components: list[ComponentRecord] = []
        self.local_root: Path | None = None
        self.load_ms: float = 0.0
        self._bindings: dict[tuple[Kind, str], GuardBinding | AdapterBinding] = {}
        self._added: list[tuple[str, Any, str | None]] = []
        self._loaded = False

    # ------------------------------------------------------------------ loading

    def load(self) -> PluginManager:
        """Load every plugin once; later calls do nothing. Strict mode raises on problems."""
        if self._loaded:
            return self
        self._loaded = True
        started = time.perf_counter()
        self._load_entry_points()
        self._load_named_plugins()
        self._load_local_files()
        self._check_requested_local_files()
        self._load_added()
        self._collect_components()
        self._add_builtin_edits()
        self._refuse_clashes()
        self._bind_components()
        self.load_ms = (time.perf_counter() - started) * 1000
        log.debug("plugin loading done in %.1f ms", self.load_ms)
        if self.selection.strict and self.problems():
            raise PluginError("plugin problems (strict mode):\n  " + "\n  ".join(self.problems()))
        return self

    def add(self, plugin: Any, name: str, *, file: str | None = None) -> PluginManager:
        """Register ``plugin`` under ``name`` when :meth:`load` runs, after local files.

        ``plugin`` is a hook-style module or object, or a class wrapped by
        :func:`invarlock.plugins.bindings.class_plugin`. It is checked and listed like any
        other plugin (origin ``plugin``, source ``object``). Used by the pytest plugin's
        isolated manager and by programs that embed invarlock.
        """
        if self._loaded:
            raise RuntimeError("PluginManager.add() must be called before load()")
        self._added.append((name, plugin, file))
        return self

    def _load_added(self) -> None:
        for name, plugin, file in self._added:
            module = getattr(plugin, "__name__", None) or type(plugin).__module__
            info = PluginInfo(
                name=name, origin=Origin.PLUGIN, source="object", module=module, file=file
            )
            if isinstance(plugin, ClassEntryPoint):
                info.module = plugin.cls.__module__
            self.plugins.append(info)
            self._register(info, plugin)

    def _load_entry_points(self) -> None:
        specs = iter_entry_points()
        entry_point_names = {s.name for s in specs}
        self._entry_point_names = entry_point_names
        for spec in specs:
            info = PluginInfo(
                name=spec.name,
                origin=Origin.BUILTIN if spec.builtin else Origin.PLUGIN,
                source="entry-point",
                group=spec.group,
                value=spec.value,
                module=spec.module,
                distribution=spec.distribution,
                distribution_version=spec.distribution_version,
            )
            self.plugins.append(info)
            log.debug("entry point %s (%s)", info.entry_point, info.distribution_label)
            if spec.group == EDIT_GROUP:
                info.fail(Status.ERROR, _EDITS_NOT_SUPPORTED)
                log.debug("  not loaded: %s", _EDITS_NOT_SUPPORTED)
                continue
            reason = self._block_reason(spec)
            if reason is not None:
                info.fail(Status.BLOCKED, reason)
                log.debug("  blocked: %s", reason)
                continue
            self._load_entry_point(spec, info)

    def _block_reason(self, spec: EntryPointSpec) -> str | None:
        reason = self.selection.block_reason(spec.name)
        if reason is not None:
            return f"blocked by {reason}"
        autoload_off = not self.selection.autoload and not spec.builtin
        if autoload_off and spec.name not in self.selection.load:
            return "autoload disabled by INVARLOCK_DISABLE_PLUGIN_AUTOLOAD"
        return None

    def _load_entry_point(self, spec: EntryPointSpec, info: PluginInfo) -> None:
        kind = _GROUP_KIND[spec.group]
        started = time.perf_counter()
        try:
            obj = spec.entry_point.load()
        except Exception as exc:
            info.load_ms = (time.perf_counter() - started) * 1000
            self._import_failed(info, exc)
            return
        info.load_ms = (time.perf_counter() - started) * 1000
        log.debug("  imported %s in %.1f ms", spec.value, info.load_ms)
        if kind is Kind.HOOKS:
            plugin: Any = obj
        elif kind is Kind.GUARD:
            plugin = GuardEntryPoint(kind.value, spec.name, obj)
        elif kind is Kind.EVALUATOR:
            plugin = EvaluatorEntryPoint(kind.value, spec.name, obj)
        else:
            plugin = AdapterEntryPoint(kind.value, spec.name, obj)
        self._register(info, plugin)

    def _import_failed(self, info: PluginInfo, exc: BaseException) -> None:
        needed = _missing_package(exc, info.module) if isinstance(exc, ImportError) else None
        if needed:
            info.fail(Status.NEEDS, needed)
        else:
            info.fail(Status.ERROR, f"import failed: {_one_line_error(exc)}")
        log.debug("  import failed: %s", _one_line_error(exc))

    def _load_named_plugins(self) -> None:
        for name in self.selection.load:
            if name in self._entry_point_names or name.startswith("local:"):
                continue  # loaded (or blocked) above / with the local files, under that name
            origin = Origin.BUILTIN if name.startswith("invarlock.") else Origin.PLUGIN
            info = PluginInfo(name=name, origin=origin, source="module", module=name)
            self.plugins.append(info)
            reason = self.selection.block_reason(name)
            if reason is not None:
                info.fail(Status.BLOCKED, f"blocked by {reason}")
                log.debug("module plugin %s blocked by %s", name, reason)
                continue
            started = time.perf_counter()
            try:
                module = importlib.import_module(name)
            except Exception as exc:
                info.load_ms = (time.perf_counter() - started) * 1000
                if isinstance(exc, ModuleNotFoundError) and exc.name == name:
                    info.fail(Status.ERROR, f"no entry point or module named {name!r}")
                else:
                    self._import_failed(info, exc)
                continue
            info.load_ms = (time.perf_counter() - started) * 1000
            info.file = getattr(module, "__file__", None)
            log.debug("module plugin %s imported in %.1f ms", name, info.load_ms)
            self._register(info, module)

    def _load_local_files(self) -> None:
        start = self.selection.local_start
        if not self.selection.local_files or start is None:
            log.debug("local plugin files: off")
            return
        files, root = find_local_plugin_files(start)
        self.local_root = root
        log.debug(
            "local plugin files: searched %s up to project root %s: %s",
            start,
            root,
            [str(f) for f in files] or "none found",
        )
        for path in files:
            name = local_plugin_name(path, root)
            info = PluginInfo(name=name, origin=Origin.LOCAL, source="local-file", file=str(path))
            self.plugins.append(info)
            reason = self.selection.block_reason(name)
            if reason is not None:
                info.fail(Status.BLOCKED, f"blocked by {reason}")
                continue
            untrusted = untrusted_reason(path)
            if untrusted is not None:
                info.fail(Status.ERROR, f"refused, not imported: {untrusted}")
                log.debug("  refused %s: %s", path, untrusted)
                continue
            started = time.perf_counter()
            try:
                module = self._import_local_file(path, name)
            except Exception as exc:
                info.load_ms = (time.perf_counter() - started) * 1000
                self._import_failed(info, exc)
                continue
            info.load_ms = (time.perf_counter() - started) * 1000
            info.module = module.__name__
            self._register(info, module)

    def _check_requested_local_files(self) -> None:
        """``local:PATH`` in ``-p``/``plugins.load`` names a local file the search must find."""
        found = {info.name for info in self.plugins if info.source == "local-file"}
        for name in self.selection.load:
            if name.startswith("local:") and name not in found:
                info = PluginInfo(name=name, origin=Origin.LOCAL, source="local-file")
                self.plugins.append(info)
                where = (
                    f"searched from {self.selection.local_start} up to the project root "
                    f"{self.local_root}"
                    if self.selection.local_files and self.selection.local_start
                    else "local plugin files are switched off"
                )
                info.fail(Status.ERROR, f"no local plugin file {name!r} ({where})")

    @staticmethod
    def _import_local_file(path: Path, name: str) -> ModuleType:
        """Import a local plugin file under a private module name; its directory joins
        ``sys.path`` (as pytest does for conftest files) so it can import its neighbours."""
        module_name = "_invarlock_local_" + re.sub(r"\W", "_", name.removeprefix("local:"))
        directory = str(path.parent)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        return module

    def _register(self, info: PluginInfo, plugin: Any) -> None:
        problems = check_plugin(plugin, info.name, self.specs)
        if problems:
            info.fail(Status.ERROR, "; ".join(problems))
            log.debug("  rejected %s: %s", info.name, info.detail)
            return
        pm_name = (
            info.name if self.pm.get_plugin(info.name) is None else f"{info.name}@{info.group}"
        )
        try:
            self.pm.register(plugin, name=pm_name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            info.fail(Status.ERROR, f"invalid plugin: {exc}")
            return
        info.obj = plugin
        info.hooks = self._hooks_of(plugin)
        log.debug("  registered %s: hooks %s", pm_name, [h.hook for h in info.hooks] or "none")

    def _hooks_of(self, plugin: Any) -> list[HookImplInfo]:
        hooks = []
        for caller in self.pm.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    hooks.append(
                        HookImplInfo(
                            hook=caller.name,
                            tryfirst=impl.tryfirst,
                            trylast=impl.trylast,
                            wrapper=impl.wrapper,
                            hookwrapper=impl.hookwrapper,
                        )
                    )
        return sorted(hooks, key=lambda h: h.hook)

    # ------------------------------------------------------------------ components

    def _component_row(
        self, kind: Kind, name: str, info: PluginInfo, cls: type | None = None
    ) -> ComponentRecord:
        record = ComponentRecord(kind=kind, name=name, plugin=info, cls=cls)
        if info.status is not Status.READY:
            record.fail(info.status, info.detail)
        self.components.append(record)
        return record

    def _collect_components(self) -> None:
        """Ask each ready plugin, one at a time, for the classes it registers; plugins that
        could not be registered get a row of their own with the reason."""
        for info in self.plugins:
            if info.obj is None:
                kind = _GROUP_KIND.get(info.group or "", Kind.HOOKS)
                self._component_row(kind, info.name, info)
        ready = [info for info in self.plugins if info.obj is not None]
        everyone = [info.obj for info in ready]
        for info in ready:
            others = [p for p in everyone if p is not info.obj]
            for kind, hook_name in _REGISTER_HOOKS.items():
                caller = self.pm.subset_hook_caller(hook_name, remove_plugins=others)
                try:
                    caller(register=self._registrar(info, kind))
                except Exception as exc:
                    info.fail(Status.ERROR, f"{hook_name} raised {_one_line_error(exc)}")
                    log.debug("  %s", info.detail)
                    for record in self.components:
                        if record.plugin is info:
                            record.fail(Status.ERROR, f"plugin {info.name!r} failed: {info.detail}")
            if isinstance(info.obj, ClassEntryPoint):
                continue
            if info.source != "entry-point" or info.group == HOOKS_GROUP:
                record = self._component_row(Kind.HOOKS, info.name, info)
                record.hooks = info.hooks
                record.summary = _summary(info.obj)

    def _registrar(self, info: PluginInfo, kind: Kind) -> Callable[..., None]:
        def register(cls: Any, name: str | None = None) -> None:
            self._register_class(info, kind, cls, name)

        return register

    def _register_class(self, info: PluginInfo, kind: Kind, cls: Any, name: str | None) -> None:
        base = _BASES[kind]
        class_name = getattr(cls, "name", None) if isinstance(cls, type) else None
        resolved = name or class_name or ""
        record = self._component_row(
            kind, resolved or repr(cls), info, cls if isinstance(cls, type) else None
        )
        record.summary = _summary(cls)
        record.backend = getattr(cls, "backend", None) if kind is Kind.ADAPTER else None
        record.version = getattr(cls, "version", None) or info.distribution_version
        record.hooks = list(info.hooks)
        label = f"{kind.value} {resolved!r}" if resolved else f"{kind.value} {cls!r}"
        if not isinstance(cls, type) or not issubclass(cls, base):
            what = f"{cls.__module__}.{cls.__qualname__}" if isinstance(cls, type) else repr(cls)
            record.fail(
                Status.ERROR, f"{what} is not a subclass of invarlock.core.api.{base.__name__}"
            )
        elif not resolved:
            record.fail(Status.ERROR, f'{cls.__qualname__} has no name: set `name = "..."` on it')
        elif isinstance(info.obj, ClassEntryPoint) and class_name and class_name != resolved:
            record.fail(
                Status.ERROR,
                f"entry point name {resolved!r} differs from "
                f"{cls.__qualname__}.name {class_name!r}",
            )
        elif isinstance(getattr(cls, "requires", ()), str):
            record.fail(
                Status.ERROR,
                f"{cls.__qualname__}.requires must be a tuple of import names, "
                f"not the string {cls.requires!r} (write ({cls.requires!r},))",
            )
        elif missing := _missing_requirements(cls):
            record.fail(Status.NEEDS, ", ".join(missing))
        elif inspect.isabstract(cls):
            abstract = ", ".join(sorted(cls.__abstractmethods__))
            record.fail(Status.ERROR, f"cannot be constructed: abstract method(s) {abstract}")
        else:
            try:
                cls()
            except Exception as exc:
                record.fail(
                    Status.ERROR,
                    f"cannot be constructed from its defaults: {_one_line_error(exc)}; "
                    f"{cls.__qualname__} is defined at {_definition(cls)}",
                )
        log.debug("  %s from %s: %s", label, info.name, record.status_text())

    def _add_builtin_edits(self) -> None:
        from invarlock.edits import EDITS

        info = PluginInfo(
            name="invarlock.edits", origin=Origin.BUILTIN, source="module", module="invarlock.edits"
        )
        torch_missing = importlib.util.find_spec("torch") is None
        for edit in EDITS.values():
            record = ComponentRecord(kind=Kind.EDIT, name=edit.name, plugin=info)
            record.backend, record.summary = "torch", edit.summary
            if torch_missing:
                record.fail(Status.NEEDS, "torch")
            self.components.insert(0, record)

    def _refuse_clashes(self) -> None:
        """Two plugins providing one name is an error naming both; none of them is used."""
        by_name: dict[tuple[Kind, str], list[ComponentRecord]] = {}
        for record in self.components:
            if record.kind is not Kind.HOOKS and record.status is not Status.BLOCKED:
                by_name.setdefault((record.kind, record.name), []).append(record)
        for (kind, name), records in by_name.items():
            if len(records) < 2:
                continue
            providers = " and ".join(_provider(r.plugin) for r in records)
            for record in records:
                record.status, record.detail = (
                    Status.ERROR,
                    f"name clash: {kind.value} {name!r} is provided by {providers}",
                )

    def _bind_components(self) -> None:
        for record in self.components:
            if not record.usable or record.cls is None:
                continue
            binding: GuardBinding | AdapterBinding
            if record.kind is Kind.GUARD:
                binding = GuardBinding(record.name, record.cls)
            elif record.kind is Kind.ADAPTER:
                binding = AdapterBinding(record.name, record.cls)
            else:
                continue
            self.pm.register(binding, name=f"{record.kind.value}:{record.name}")
            self._bindings[(record.kind, record.name)] = binding
            record.hooks = sorted({*record.hooks, *self._hooks_of(binding)}, key=lambda h: h.hook)

    # ------------------------------------------------------------------ queries

    def problems(self) -> list[str]:
        """One line per plugin or component that is not usable (blocked ones excluded)."""
        lines = []
        for info in self.plugins:
            if info.status in (Status.ERROR, Status.NEEDS):
                lines.append(f"plugin {info.name!r}: {_status_words(info.status, info.detail)}")
        for record in self.components:
            if (
                record.status in (Status.ERROR, Status.NEEDS)
                and record.plugin.status is Status.READY
            ):
                words = _status_words(record.status, record.detail)
                lines.append(f"{record.kind.value} {record.name!r}: {words}")
        return list(dict.fromkeys(lines))  # a clash is one problem, not one per provider

    def broken_plugins(self) -> list[str]:
        """``"NAME (file): why"`` for every plugin that could not be loaded or registered."""
        lines = []
        for info in self.plugins:
            if info.status in (Status.ERROR, Status.NEEDS):
                where = f" ({info.file})" if info.file else ""
                lines.append(f"{info.name}{where}: {_status_words(info.status, info.detail)}")
        return lines

    def _hook_style_guard_impls(self) -> bool:
        """Whether some plain plugin implements the guard hooks itself (not a binding)."""
        for info in self.plugins:
            if info.obj is not None and not isinstance(info.obj, ClassEntryPoint):
                hooks = {h.hook for h in info.hooks if not (h.wrapper or h.hookwrapper)}
                if hooks & {"invarlock_guard_prepare", "invarlock_guard_validate"}:
                    return True
        return False

    def iter_components(self, kind: Kind | None = None) -> Iterator[ComponentRecord]:
        for record in self.components:
            if kind is None or record.kind is kind:
                yield record

    def find(self, kind: Kind, name: str) -> list[ComponentRecord]:
        return [r for r in self.components if r.kind is kind and r.name == name]

    def names(self, kind: Kind, *, usable_only: bool = True) -> list[str]:
        return sorted({r.name for r in self.iter_components(kind) if r.usable or not usable_only})

    def require(self, kind: Kind, name: str) -> ComponentRecord:
        """The usable component ``name``; unknown → ConfigError, unusable → PluginError."""
        records = self.find(kind, name)
        if not records:
            known = ", ".join(self.names(kind, usable_only=False)) or "none"
            broken = self.broken_plugins()
            if broken:
                raise PluginError(
                    f"{kind.value} {name!r} is not registered, and plugin(s) that may provide it "
                    f"failed to load: {'; '.join(broken)} (known {kind.value}s: {known})"
                )
            hint = ""
            if kind is Kind.GUARD and self._hook_style_guard_impls():
                hint = (
                    "; a guard name comes from a registered Guard class (an entry point or "
                    "register(MyGuard) in invarlock_register_guards): hook functions alone "
                    "cannot add one"
                )
            raise ConfigError(f"unknown {kind.value} {name!r}; known {kind.value}s: {known}{hint}")
        record = next((r for r in records if r.usable), records[0])  # blocked ones yield
        if record.status is Status.BLOCKED:
            raise PluginError(f"{kind.value} {name!r} is blocked ({record.detail})")
        if not record.usable:
            raise PluginError(f"{kind.value} {name!r} cannot be used: {record.status_text()}")
        return record

    # ------------------------------------------------------------------ dispatch

    def configure_guard(self, name: str, options: Mapping[str, Any]) -> Guard:
        """Build guard ``name`` from its YAML block (already checked by the runner)."""
        self.require(Kind.GUARD, name)
        binding = self._bindings[(Kind.GUARD, name)]
        assert isinstance(binding, GuardBinding)
        return binding.configure(options)

    def resolve_adapter(self, adapter_name: str, model_id: str) -> str:
        """``auto`` → the first adapter whose ``can_load(model_id)`` is true (plugins and
        local files before built-ins), else the built-in ``auto`` adapter itself, whose
        error says why nothing can load the id; any other name is checked and returned."""
        if adapter_name != "auto":
            self.require(Kind.ADAPTER, adapter_name)
            return adapter_name
        candidates = [
            r for r in self.iter_components(Kind.ADAPTER) if r.usable and r.name != "auto" and r.cls
        ]
        candidates.sort(key=lambda r: r.origin is Origin.BUILTIN)
        for record in candidates:
            try:
                if record.cls().can_load(model_id):
                    log.debug("adapter auto → %s for %s", record.name, model_id)
                    return record.name
            except Exception as exc:
                raise PluginError(
                    f"adapter {record.name!r}: can_load({model_id!r}) raised {_one_line_error(exc)}"
                ) from exc
        if any(r.usable for r in self.find(Kind.ADAPTER, "auto")):
            return "auto"  # the built-in auto adapter explains why it cannot load the id
        tried = ", ".join(r.name for r in candidates) or "none"
        raise ModelLoadError(f"no adapter can load {model_id!r} (asked: {tried})")

    def load_model(
        self, adapter_name: str, model_id: str, device: str, options: Mapping[str, Any]
    ) -> LoadedModel:
        resolved = self.resolve_adapter(adapter_name, model_id)
        loaded = self.pm.hook.invarlock_load_model(
            adapter_name=resolved, model_id=model_id, device=device, options=dict(options)
        )
        if loaded is None:
            raise PluginError(f"no plugin answered invarlock_load_model for adapter {resolved!r}")
        return loaded

    def guard_prepare(
        self, name: str, model: Any, adapter: Any, calib: Any, policy: Mapping[str, Any]
    ) -> Any:
        return self.pm.hook.invarlock_guard_prepare(
            guard_name=name, model=model, adapter=adapter, calib=calib, policy=policy
        )

    def evaluator(self, name: str) -> Evaluator:
        """A new instance of the registered evaluator ``name`` (``eval.metric``)."""
        record = self.require(Kind.EVALUATOR, name)
        assert record.cls is not None
        return record.cls()

    def guard_validate(
        self, name: str, model: Any, adapter: Any, context: Mapping[str, Any]
    ) -> Any:
        return self.pm.hook.invarlock_guard_validate(
            guard_name=name, model=model, adapter=adapter, context=context
        )

    @property
    def hook(self) -> Any:
        """The pluggy hook relay, for the notification hooks (all results ignored)."""
        return self.pm.hook


def _provider(info: PluginInfo) -> str:
    if info.distribution:
        return f"{info.distribution_label} ({info.entry_point})"
    if info.file:
        return f"{info.name} ({info.file})"
    return info.name


def _status_words(status: Status, detail: str) -> str:
    return f"needs {detail}" if status is Status.NEEDS else detail
