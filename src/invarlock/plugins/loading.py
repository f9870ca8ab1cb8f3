"""Loading plugins into the pluggy manager, in the documented order, and recording each.

Order (docs/plugins.md): built-in modules (:data:`~invarlock.plugins.builtin.BUILTIN_PLUGINS`)
→ entry points → modules named with ``-p``/``INVARLOCK_PLUGINS``/``plugins.load`` → local
plugin files → objects handed to :meth:`PluginLoader.add`. Every unit becomes a
:class:`~invarlock.plugins.records.PluginInfo` telling what happened to it.

Blocking is pluggy's own: ``-p no:NAME`` and ``plugins.block`` call ``set_blocked``
before anything loads;
the one load path asks ``is_blocked`` before importing. The reasons are kept only to show
them in the listing. ``INVARLOCK_DISABLE_PLUGIN_AUTOLOAD`` is not a block: it leaves
third-party entry points unloaded (listed as blocked) without reserving their names.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import re
import sys
import time
from collections.abc import Callable, Mapping
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from invarlock import __version__
from invarlock.plugins.bindings import (
    AdapterEntryPoint,
    ClassEntryPoint,
    EvaluatorEntryPoint,
    GuardEntryPoint,
)
from invarlock.plugins.builtin import BUILTIN_PLUGINS
from invarlock.plugins.discovery import (
    ADAPTER_GROUP,
    BUILTIN_DISTRIBUTION,
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
from invarlock.plugins.records import HookImplInfo, Origin, PluginInfo, Status
from invarlock.plugins.validation import HOOK_PREFIX, check_plugin
from invarlock.plugins.wording import missing_package, one_line_error

log = logging.getLogger("invarlock.plugins")

EDITS_NOT_SUPPORTED = (
    "not supported: plugins add adapters and guards, not edit algorithms "
    "(the built-in edits are quant_rtn and noop)"
)
_CLASS_PLUGINS: dict[str, type[ClassEntryPoint]] = {
    GUARD_GROUP: GuardEntryPoint,
    ADAPTER_GROUP: AdapterEntryPoint,
    EVALUATOR_GROUP: EvaluatorEntryPoint,
}
_AUTOLOAD_OFF = "autoload disabled by INVARLOCK_DISABLE_PLUGIN_AUTOLOAD"


class HostPluggyManager(pluggy.PluginManager):
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


class _Refused(Exception):
    """A local plugin file that must not be imported (see ``untrusted_reason``)."""


class PluginLoader:
    """Loads every selected plugin into ``pm`` once; :attr:`plugins` records each."""

    def __init__(
        self, pm: pluggy.PluginManager, selection: Selection, specs: Mapping[str, tuple[str, ...]]
    ) -> None:
        self._pm, self.selection, self.specs = pm, selection, specs
        self.plugins: list[PluginInfo] = []
        self.block_reasons: dict[str, str] = {}
        self.local_root: Path | None = None
        self._added: list[tuple[str, Any, str | None]] = []

    def add(self, plugin: Any, name: str, file: str | None = None) -> None:
        self._added.append((name, plugin, file))

    def load(self) -> None:
        entry_points = iter_entry_points()
        self._block()
        for module in BUILTIN_PLUGINS:
            info = PluginInfo(module, Origin.BUILTIN, "module", module=module)
            info.distribution, info.distribution_version = BUILTIN_DISTRIBUTION, __version__
            self._load(info, lambda module=module: import_module(module))
        for spec in entry_points:
            self._load_entry_point(spec)
        loaded = {info.name for info in self.plugins}
        for name in self.selection.load:
            if name not in loaded and not name.startswith("local:"):
                self._load_named_module(name)
        self._load_local_files()
        for name, plugin, file in self._added:
            module = getattr(plugin, "__name__", None) or type(plugin).__module__
            if isinstance(plugin, ClassEntryPoint):
                module = plugin.cls.__module__
            info = PluginInfo(name, Origin.PLUGIN, "object", module=module, file=file)
            self._load(info, lambda plugin=plugin: plugin)

    def _block(self) -> None:
        """Tell pluggy every blocked name up front, and remember why for the listing."""
        for name, who in self.selection.block.items():
            self.block_reasons[name] = f"blocked by {who}"
            self._pm.set_blocked(name)

    def _load(self, info: PluginInfo, importer: Callable[[], Any]) -> None:
        """The one path from a plugin name to a registered plugin: blocked → imported →
        checked against the hook contract → registered."""
        self.plugins.append(info)
        if self._pm.is_blocked(info.name):
            info.fail(Status.BLOCKED, self.block_reasons.get(info.name, "blocked"))
            log.debug("plugin %s: %s", info.name, info.detail)
            return
        started = time.perf_counter()
        try:
            plugin = importer()
        except _Refused as exc:
            info.fail(Status.ERROR, f"refused, not imported: {exc}")
            return
        except Exception as exc:
            self._import_failed(info, exc)
            return
        finally:
            info.load_ms = (time.perf_counter() - started) * 1000
        if info.source == "module" and info.origin is Origin.PLUGIN:
            info.file = getattr(plugin, "__file__", None)
        log.debug("plugin %s imported in %.1f ms", info.name, info.load_ms)
        self._register(info, plugin)

    def _import_failed(self, info: PluginInfo, exc: BaseException) -> None:
        if (
            info.source == "module"
            and isinstance(exc, ModuleNotFoundError)
            and exc.name == info.name
        ):
            info.fail(Status.ERROR, f"no entry point or module named {info.name!r}")
        elif needed := missing_package(exc, info.module):
            info.fail(Status.NEEDS, needed)
        else:
            info.fail(Status.ERROR, f"import failed: {one_line_error(exc)}")
        log.debug("  import failed: %s", one_line_error(exc))

    def _load_entry_point(self, spec: EntryPointSpec) -> None:
        info = PluginInfo(
            name=spec.name,
            origin=Origin.PLUGIN,
            source="entry-point",
            group=spec.group,
            value=spec.value,
            module=spec.module,
            distribution=spec.distribution,
            distribution_version=spec.distribution_version,
        )
        log.debug("entry point %s (%s)", info.entry_point, info.distribution_label)
        if spec.builtin:  # invarlock's own (stale) metadata: built-ins load from the tuple
            log.debug("entry point %s of invarlock itself: ignored", spec.name)
            return
        if spec.group == EDIT_GROUP:
            self.plugins.append(info)
            info.fail(Status.ERROR, EDITS_NOT_SUPPORTED)
            return
        selected = self.selection.autoload or spec.name in self.selection.load
        if not selected and not self._pm.is_blocked(spec.name):
            self.plugins.append(info)  # not selected, not blocked: the name stays free
            info.fail(Status.BLOCKED, _AUTOLOAD_OFF)
            return
        wrapper = _CLASS_PLUGINS.get(spec.group)
        if spec.group == HOOKS_GROUP or wrapper is None:
            self._load(info, spec.entry_point.load)
        else:
            kind = spec.group.rsplit(".", 1)[1].removesuffix("s")
            self._load(info, lambda: wrapper(kind, spec.name, spec.entry_point.load()))

    def _load_named_module(self, name: str) -> None:
        info = PluginInfo(name=name, origin=Origin.PLUGIN, source="module", module=name)
        self._load(info, lambda: import_module(name))

    def _load_local_files(self) -> None:
        start = self.selection.local_start
        found: set[str] = set()
        if not self.selection.local_files or start is None:
            log.debug("local plugin files: off")
        else:
            files, self.local_root = find_local_plugin_files(start)
            log.debug(
                "local plugin files: searched %s up to project root %s: %s",
                start,
                self.local_root,
                [str(f) for f in files] or "none found",
            )
            for path in files:
                name = local_plugin_name(path, self.local_root)
                found.add(name)
                info = PluginInfo(name, Origin.LOCAL, "local-file", file=str(path))
                self._load(info, lambda path=path, name=name: _import_local_file(path, name))
                if info.obj is not None:
                    info.module = info.obj.__name__
        for name in self.selection.load:  # `local:PATH` names a file the search must find
            if name.startswith("local:") and name not in found:
                info = PluginInfo(name=name, origin=Origin.LOCAL, source="local-file")
                self.plugins.append(info)
                where = (
                    f"searched from {start} up to the project root {self.local_root}"
                    if self.selection.local_files and start
                    else "local plugin files are switched off"
                )
                info.fail(Status.ERROR, f"no local plugin file {name!r} ({where})")

    def _register(self, info: PluginInfo, plugin: Any) -> None:
        problems = check_plugin(plugin, info.name, self.specs)
        if problems:
            info.fail(Status.ERROR, "; ".join(problems))
            log.debug("  rejected %s: %s", info.name, info.detail)
            return
        pm_name = (
            info.name if self._pm.get_plugin(info.name) is None else f"{info.name}@{info.group}"
        )
        try:
            self._pm.register(plugin, name=pm_name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            info.fail(Status.ERROR, f"invalid plugin: {exc}")
            return
        info.obj = plugin
        info.hooks = hooks_of(self._pm, plugin)
        log.debug("  registered %s: hooks %s", pm_name, [h.hook for h in info.hooks] or "none")


def hooks_of(pm: pluggy.PluginManager, plugin: Any) -> list[HookImplInfo]:
    """The hooks ``plugin`` implements, with their ordering flags, sorted by name."""
    hooks = []
    for caller in pm.get_hookcallers(plugin) or []:
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


def _import_local_file(path: Path, name: str) -> ModuleType:
    """Import a trusted local plugin file under a private module name; its directory joins
    ``sys.path`` (as pytest does for conftest files) so it can import its neighbours."""
    untrusted = untrusted_reason(path)
    if untrusted is not None:
        raise _Refused(untrusted)
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
