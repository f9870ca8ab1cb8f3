"""How the host reaches a component: the one path from a run to a guard or adapter instance.

* :class:`ClassEntryPoint` stands for a class named by an ``invarlock.guards``,
  ``invarlock.adapters`` or ``invarlock.evaluators`` entry point: it implements the matching
  ``invarlock_register_*`` hook, so class entry points and hook-style plugins reach the host
  the same way.
* :class:`GuardBinding` and :class:`AdapterBinding` are plugins that implement the run-time
  hooks (``invarlock_guard_prepare``/``_validate``, ``invarlock_load_model``) for one
  registered class, answering only for its name.

Construction: the registry builds every registered class once, from its defaults, when it
checks it (:mod:`invarlock.plugins.registry`), and hands that instance to its binding. An
adapter and an evaluator are used through that one instance (``can_load``, ``load_model``
and ``describe`` through :class:`AdapterBinding`); a guard's instance serves the first run
whose YAML block sets nothing but defaults, and otherwise :meth:`GuardBinding.configure`
builds it from the block, once per run. The runner calls no class itself: it calls the
plugin manager's typed methods, which call these bindings or the hooks. The instances then
travel as data: the adapter in :class:`~invarlock.core.api.LoadedModel` (guards receive it,
the evaluation asks it for the tokenizer) and the evaluator into the paired evaluation.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from invarlock._markers import hookimpl
from invarlock.core.api import Guard, LoadedModel, ModelAdapter


class ClassEntryPoint:
    """A plugin standing for one class named by a class entry point."""

    def __init__(self, kind: str, name: str, cls: Any) -> None:
        self.kind, self.name, self.cls = kind, name, cls

    def __repr__(self) -> str:
        return f"<ClassEntryPoint {self.kind} {self.name}={self.cls!r}>"


class GuardEntryPoint(ClassEntryPoint):
    @hookimpl
    def invarlock_register_guards(self, register: Callable[..., None]) -> None:
        register(self.cls, name=self.name)


class AdapterEntryPoint(ClassEntryPoint):
    @hookimpl
    def invarlock_register_adapters(self, register: Callable[..., None]) -> None:
        register(self.cls, name=self.name)


class EvaluatorEntryPoint(ClassEntryPoint):
    @hookimpl
    def invarlock_register_evaluators(self, register: Callable[..., None]) -> None:
        register(self.cls, name=self.name)


def class_plugin(cls: type, name: str | None = None) -> ClassEntryPoint:
    """A plugin that registers one Guard or ModelAdapter class, as its entry point would."""
    resolved = name or getattr(cls, "name", "") or ""
    if isinstance(cls, type) and issubclass(cls, ModelAdapter):
        return AdapterEntryPoint("adapter", resolved, cls)
    return GuardEntryPoint("guard", resolved, cls)


class GuardBinding:
    """Implements the guard hooks for one guard class, answering only for ``name``.

    ``spare`` is the instance the registry built from the defaults; :meth:`configure` hands
    it to the first run whose options are all defaults and builds a new instance otherwise.
    A guard that is not in ``guards.order`` is never configured.
    """

    def __init__(self, name: str, cls: type[Guard], spare: Guard | None = None) -> None:
        self.name, self.cls = name, cls
        self._spare = spare
        self.instance: Guard | None = None

    def configure(self, options: Mapping[str, Any]) -> Guard:
        """The run's instance of this guard, built from its YAML block."""
        if self._spare is not None and _all_defaults(self.cls, options):
            self.instance, self._spare = self._spare, None
        else:
            self.instance = self.cls(**dict(options))
        return self.instance

    def _guard(self) -> Guard:
        if self.instance is None:
            raise RuntimeError(f"guard {self.name!r} was dispatched before it was configured")
        return self.instance

    @hookimpl
    def invarlock_guard_prepare(
        self, guard_name: str, model: Any, adapter: Any, calib: Any, policy: Any
    ) -> Any:
        if guard_name != self.name:
            return None
        return self._guard().prepare(model, adapter, calib, policy)

    @hookimpl
    def invarlock_guard_validate(
        self, guard_name: str, model: Any, adapter: Any, context: Mapping[str, Any]
    ) -> Any:
        if guard_name != self.name:
            return None
        return self._guard().validate(model, adapter, context)

    def __repr__(self) -> str:
        return f"<GuardBinding {self.name}={self.cls.__module__}:{self.cls.__qualname__}>"


class AdapterBinding:
    """Implements ``invarlock_load_model`` for one adapter instance, answering only for ``name``;
    ``can_load``, ``check`` and ``describe`` reach the same instance through the plugin
    manager."""

    def __init__(self, name: str, adapter: ModelAdapter) -> None:
        self.name, self.adapter = name, adapter

    def can_load(self, model_id: str) -> bool:
        return bool(self.adapter.can_load(model_id))

    def check(self, model_id: str, options: Mapping[str, Any]) -> None:
        self.adapter.check(model_id, **dict(options))

    def describe(self, model: Any) -> dict[str, Any]:
        return dict(self.adapter.describe(model))

    @hookimpl
    def invarlock_load_model(
        self, adapter_name: str, model_id: str, device: str, options: Mapping[str, Any]
    ) -> LoadedModel | None:
        if adapter_name != self.name:
            return None
        model = self.adapter.load_model(model_id, device=device, **dict(options))
        info = dict(getattr(self.adapter, "load_info", None) or {})  # e.g. the source GGUF
        return LoadedModel(
            model=model, adapter=self.adapter, adapter_name=self.name, model_id=model_id, info=info
        )

    def __repr__(self) -> str:
        cls = type(self.adapter)
        return f"<AdapterBinding {self.name}={cls.__module__}:{cls.__qualname__}>"


def _all_defaults(cls: type, options: Mapping[str, Any]) -> bool:
    """Whether constructing ``cls(**options)`` would pass nothing but its defaults."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return not options
    for key, value in options.items():
        parameter = parameters.get(key)
        if parameter is None or parameter.default is inspect.Parameter.empty:
            return False
        try:
            if type(parameter.default) is not type(value) or parameter.default != value:
                return False
        except Exception:  # an exotic __eq__: build the guard from its options
            return False
    return True
