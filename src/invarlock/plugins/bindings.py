"""The one adapter layer that turns Guard and ModelAdapter classes into pluggy plugins.

* :class:`ClassEntryPoint` stands for a class named by an ``invarlock.guards`` or
  ``invarlock.adapters`` entry point: it implements the matching ``invarlock_register_*``
  hook, so class entry points and hook-style plugins reach the host the same way.
* :class:`GuardBinding` and :class:`AdapterBinding` implement the run-time hooks for one
  registered class and answer only for their own name. The runner never calls a class
  directly: every call goes through ``pm.hook``.
"""

from __future__ import annotations

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


class GuardBinding:
    """Implements the guard hooks for one guard class, answering only for ``name``.

    The instance is built from the guard's YAML block by :meth:`configure`; a guard that
    is not in ``guards.order`` is never instantiated.
    """

    def __init__(self, name: str, cls: type[Guard]) -> None:
        self.name, self.cls = name, cls
        self.instance: Guard | None = None

    def configure(self, options: Mapping[str, Any]) -> Guard:
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
    """Implements ``invarlock_load_model`` for one adapter class, answering only for ``name``."""

    def __init__(self, name: str, cls: type[ModelAdapter]) -> None:
        self.name, self.cls = name, cls

    @hookimpl
    def invarlock_load_model(
        self, adapter_name: str, model_id: str, device: str, options: Mapping[str, Any]
    ) -> LoadedModel | None:
        if adapter_name != self.name:
            return None
        adapter = self.cls()
        model = adapter.load_model(model_id, device=device, **dict(options))
        info = dict(getattr(adapter, "load_info", None) or {})  # e.g. the source GGUF file
        return LoadedModel(
            model=model, adapter=adapter, adapter_name=self.name, model_id=model_id, info=info
        )

    def __repr__(self) -> str:
        return f"<AdapterBinding {self.name}={self.cls.__module__}:{self.cls.__qualname__}>"
