"""The plugin manager: a thin facade with ``load()`` and one typed method per hook.

Loading is :mod:`invarlock.plugins.loading` (built-ins, entry points, ``-p``, local files,
objects given to :meth:`PluginManager.add`; blocking through pluggy's ``set_blocked``), the
components are :mod:`invarlock.plugins.registry`, and calling every implementation of a
notification is :mod:`invarlock.plugins.notify`. Nothing outside this module touches
pluggy's hook relay: the runner calls the typed methods below.

Host plugins (:meth:`PluginManager.add_host_plugin`, e.g. the run display of the CLI)
implement hooks like any plugin but are not listed, not named as implementers (so their
calls trigger no whole-model integrity check) and not written to the events log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from invarlock import hookspecs
from invarlock._markers import PROJECT_NAME
from invarlock.core.api import Guard, LoadedModel
from invarlock.core.errors import PluginError
from invarlock.core.evaluator import Evaluator
from invarlock.plugins.bindings import AdapterBinding, ClassEntryPoint, GuardBinding
from invarlock.plugins.discovery import Selection
from invarlock.plugins.loading import HostPluggyManager, PluginLoader
from invarlock.plugins.notify import Notified, notify_each
from invarlock.plugins.records import ComponentRecord, Kind, PluginInfo, Status
from invarlock.plugins.registry import Registry
from invarlock.plugins.settings import debug_trace_enabled
from invarlock.plugins.tracing import HookMonitor
from invarlock.plugins.validation import spec_arguments
from invarlock.plugins.wording import status_words

if TYPE_CHECKING:
    from invarlock.core.context import RunContext
    from invarlock.core.edit import EditResult
    from invarlock.core.report import RunReport
    from invarlock.core.results import GuardOutcome

log = logging.getLogger("invarlock.plugins")

#: Hooks that fire once per phase or per evaluated batch: logged only for user plugins.
PROGRESS_HOOKS = ("invarlock_phase_start", "invarlock_phase_end", "invarlock_eval_progress")
_GUARD_HINT = (
    "; a guard name comes from a registered Guard class (an entry point or "
    "register(MyGuard) in invarlock_register_guards): hook functions alone cannot add one"
)


class PluginManager:
    """Loads invarlock plugins and calls their hooks (see the module docstring)."""

    def __init__(self, selection: Selection | None = None) -> None:
        self.selection = selection or Selection.build()
        self._pm = HostPluggyManager(PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._host: set[str] = set()
        self.monitor = HookMonitor(self._pm, host=self._host, quiet=PROGRESS_HOOKS)
        if debug_trace_enabled():
            self.monitor.enable_trace()
        self._loader = PluginLoader(self._pm, self.selection, spec_arguments(hookspecs))
        self._registry = Registry(self._pm, self._loader.block_reasons)
        self.load_ms = 0.0
        self._loaded = False

    # ------------------------------------------------------------------ loading

    def load(self) -> PluginManager:
        """Load every plugin once; later calls do nothing. Strict mode raises on problems."""
        if not self._loaded:
            self._loaded = True
            started = time.perf_counter()
            self._loader.load()
            self._registry.collect(self._loader.plugins)
            self.load_ms = (time.perf_counter() - started) * 1000
            log.debug("plugin loading done in %.1f ms", self.load_ms)
            if self.selection.strict and self.problems():
                problems = "\n  ".join(self.problems())
                raise PluginError(f"plugin problems (strict mode):\n  {problems}")
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
        self._loader.add(plugin, name, file)
        return self

    def add_host_plugin(self, plugin: Any, name: str) -> None:
        """Register one of the host's own plugins (e.g. the run display): it receives the
        hooks it implements, but is not listed, logged or integrity-checked as a plugin."""
        self._pm.register(plugin, name=name)
        self._host.add(name)

    # ------------------------------------------------------------------ what was loaded

    @property
    def plugins(self) -> list[PluginInfo]:
        return self._loader.plugins

    @property
    def components(self) -> list[ComponentRecord]:
        return self._registry.components

    @property
    def local_root(self) -> Path | None:
        return self._loader.local_root

    def iter_components(self, kind: Kind | None = None) -> Iterator[ComponentRecord]:
        return self._registry.iter(kind)

    def find(self, kind: Kind, name: str) -> list[ComponentRecord]:
        return self._registry.find(kind, name)

    def names(self, kind: Kind, *, usable_only: bool = True) -> list[str]:
        return self._registry.names(kind, usable_only=usable_only)

    def require(self, kind: Kind, name: str) -> ComponentRecord:
        """The usable component ``name``; unknown → ConfigError, unusable → PluginError."""
        hint = _GUARD_HINT if kind is Kind.GUARD and self._hook_style_guards() else ""
        return self._registry.require(kind, name, self.broken_plugins(), hint)

    def problems(self) -> list[str]:
        """One line per plugin or component that is not usable (blocked ones excluded)."""
        lines = [
            f"plugin {info.name!r}: {status_words(info.status, info.detail)}"
            for info in self.plugins
            if info.status in (Status.ERROR, Status.NEEDS)
        ]
        return list(dict.fromkeys(lines + self._registry.problems()))  # one line per clash

    def broken_plugins(self) -> list[str]:
        """``"NAME (file): why"`` for every plugin that could not be loaded or registered."""
        return [
            f"{info.name}{f' ({info.file})' if info.file else ''}: "
            f"{status_words(info.status, info.detail)}"
            for info in self.plugins
            if info.status in (Status.ERROR, Status.NEEDS)
        ]

    def _hook_style_guards(self) -> bool:
        """Whether some plain plugin implements the guard hooks itself (not a binding)."""
        guard_hooks = {"invarlock_guard_prepare", "invarlock_guard_validate"}
        return any(
            guard_hooks & {h.hook for h in info.hooks if not (h.wrapper or h.hookwrapper)}
            for info in self.plugins
            if info.obj is not None and not isinstance(info.obj, ClassEntryPoint)
        )

    # ------------------------------------------------------------------ components

    def configure_guard(self, name: str, options: Mapping[str, Any]) -> Guard:
        """The run's instance of guard ``name``, built from its YAML block (checked already)."""
        self.require(Kind.GUARD, name)
        binding = self._registry.bindings[(Kind.GUARD, name)]
        assert isinstance(binding, GuardBinding)
        return binding.configure(options)

    def resolve_adapter(self, adapter_name: str, model_id: str) -> str:
        """``auto`` → the first adapter whose ``can_load(model_id)`` is true (plugins and
        local files before built-ins), else the built-in ``auto`` adapter itself, whose
        error says why nothing can load the id; any other name is checked and returned."""
        if adapter_name != "auto":
            self.require(Kind.ADAPTER, adapter_name)
            return adapter_name
        return self._registry.adapter_for(model_id)

    def check_model(self, adapter_name: str, model_id: str, options: Mapping[str, Any]) -> None:
        """The adapter's ``check(model_id, **options)`` (a hook-style loader has none)."""
        binding = self._registry.bindings.get((Kind.ADAPTER, adapter_name))
        if isinstance(binding, AdapterBinding):
            binding.check(model_id, options)

    def describe_model(self, loaded: LoadedModel) -> dict[str, Any]:
        """The adapter's ``describe(model)``, through its binding when the adapter is a
        registered class (a hook-style loader's own adapter is asked directly)."""
        binding = self._registry.bindings.get((Kind.ADAPTER, loaded.adapter_name))
        if isinstance(binding, AdapterBinding) and binding.adapter is loaded.adapter:
            return binding.describe(loaded.model)
        return dict(loaded.adapter.describe(loaded.model))

    def evaluator(self, name: str) -> Evaluator:
        """The registered evaluator ``name`` (``eval.metric``), built once by the registry."""
        record = self.require(Kind.EVALUATOR, name)
        assert record.instance is not None
        return record.instance

    # ------------------------------------------------------------------ hooks with results

    def load_model(
        self, adapter_name: str, model_id: str, device: str, options: Mapping[str, Any]
    ) -> LoadedModel:
        resolved = self.resolve_adapter(adapter_name, model_id)
        loaded = self._pm.hook.invarlock_load_model(
            adapter_name=resolved, model_id=model_id, device=device, options=dict(options)
        )
        if loaded is None:
            raise PluginError(f"no plugin answered invarlock_load_model for adapter {resolved!r}")
        return loaded

    def guard_prepare(
        self, name: str, model: Any, adapter: Any, calib: Any, policy: Mapping[str, Any]
    ) -> Any:
        return self._pm.hook.invarlock_guard_prepare(
            guard_name=name, model=model, adapter=adapter, calib=calib, policy=policy
        )

    def guard_validate(
        self, name: str, model: Any, adapter: Any, context: Mapping[str, Any]
    ) -> Any:
        return self._pm.hook.invarlock_guard_validate(
            guard_name=name, model=model, adapter=adapter, context=context
        )

    # ------------------------------------------------------------------ notifications
    # Each calls every implementation, even when one raises, and returns what happened.

    def _notify(self, caller: pluggy.HookCaller, **kwargs: Any) -> Notified:
        return notify_each(self._pm, caller, kwargs, self._host)

    def configure(self, config: Mapping[str, Any], run_dir: Path) -> Notified:
        return self._notify(self._pm.hook.invarlock_configure, config=config, run_dir=run_dir)

    def run_start(self, run: RunContext) -> Notified:
        return self._notify(self._pm.hook.invarlock_run_start, run=run)

    def model_loaded(
        self, run: RunContext, loaded: LoadedModel, description: Mapping[str, Any]
    ) -> Notified:
        return self._notify(
            self._pm.hook.invarlock_model_loaded, run=run, loaded=loaded, description=description
        )

    def edit_applied(self, run: RunContext, result: EditResult) -> Notified:
        return self._notify(self._pm.hook.invarlock_edit_applied, run=run, result=result)

    def guard_result(self, run: RunContext, outcome: GuardOutcome) -> Notified:
        return self._notify(self._pm.hook.invarlock_guard_result, run=run, outcome=outcome)

    def phase_start(self, run: RunContext, phase: str, detail: str) -> Notified:
        return self._notify(
            self._pm.hook.invarlock_phase_start, run=run, phase=phase, detail=detail
        )

    def phase_end(self, run: RunContext, phase: str, seconds: float) -> Notified:
        return self._notify(
            self._pm.hook.invarlock_phase_end, run=run, phase=phase, seconds=seconds
        )

    def eval_progress(
        self, run: RunContext, phase: str, done: int, total: int, tokens: int
    ) -> Notified:
        return self._notify(
            self._pm.hook.invarlock_eval_progress,
            run=run, phase=phase, done=done, total=total, tokens=tokens,
        )  # fmt: skip

    def report(self, run: RunContext, report: RunReport, run_dir: Path) -> Notified:
        return self._notify(self._pm.hook.invarlock_report, run=run, report=report, run_dir=run_dir)

    def run_finish(self, run: RunContext, status: str, exit_code: int) -> Notified:
        return self._notify(
            self._pm.hook.invarlock_run_finish, run=run, status=status, exit_code=exit_code
        )
