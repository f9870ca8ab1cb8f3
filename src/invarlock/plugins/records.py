"""What the plugin manager knows about each plugin and each component, built once per load.

A *plugin* is one loadable unit: a built-in module, an entry point, a module named with
``-p``, or a local plugin file. A *component* is one row of ``invarlock plugins``: a guard,
an adapter or an evaluator contributed by a plugin, or an edit from the edit registry
(:data:`invarlock.edits.EDITS`, which has no plugin). Both render as a table or as one
JSON document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

#: Version of the JSON document printed by ``invarlock plugins list --json``.
JSON_SCHEMA = "invarlock.plugins/v1"


class Origin(str, Enum):
    """Where a plugin's code comes from."""

    BUILTIN = "builtin"
    PLUGIN = "plugin"
    LOCAL = "local"

    @property
    def label(self) -> str:
        return {"builtin": "Built-in", "plugin": "Plugin", "local": "Local"}[self.value]


class Status(str, Enum):
    """Whether a plugin or component can be used, as found by actually loading it."""

    READY = "ready"
    NEEDS = "needs"  # a required package is not installed
    ERROR = "error"
    BLOCKED = "blocked"


class Kind(str, Enum):
    GUARD = "guard"
    ADAPTER = "adapter"
    EDIT = "edit"
    EVALUATOR = "evaluator"
    HOOKS = "hooks"  # a hook-style plugin module (no class of its own)

    @property
    def label(self) -> str:
        return {
            "guard": "Guard",
            "adapter": "Adapter",
            "edit": "Edit",
            "evaluator": "Evaluator",
            "hooks": "Hooks",
        }[self.value]


#: The order of tables in ``invarlock plugins``.
KIND_ORDER = (Kind.ADAPTER, Kind.GUARD, Kind.EDIT, Kind.EVALUATOR, Kind.HOOKS)


@dataclass(frozen=True)
class HookImplInfo:
    """One ``invarlock_*`` hook implementation and its ordering flags."""

    hook: str
    tryfirst: bool = False
    trylast: bool = False
    wrapper: bool = False
    hookwrapper: bool = False

    @property
    def flags(self) -> list[str]:
        names = ("tryfirst", "trylast", "wrapper", "hookwrapper")
        return [n for n in names if getattr(self, n)]

    def to_dict(self) -> dict[str, Any]:
        return {"hook": self.hook, "flags": self.flags}


@dataclass
class PluginInfo:
    """One loadable unit and the truth about loading it."""

    name: str
    origin: Origin
    source: str  # "entry-point", "module", "local-file"
    group: str | None = None
    value: str | None = None  # entry point value, e.g. "pkg.mod:Class"
    module: str | None = None
    distribution: str | None = None
    distribution_version: str | None = None
    file: str | None = None
    status: Status = Status.READY
    detail: str = ""
    hooks: list[HookImplInfo] = field(default_factory=list)
    load_ms: float | None = None
    obj: Any = field(default=None, repr=False, compare=False)

    @property
    def entry_point(self) -> str | None:
        if self.group is None or self.value is None:
            return None
        return f"{self.group}: {self.name} = {self.value}"

    @property
    def distribution_label(self) -> str | None:
        if self.distribution is None:
            return None
        return f"{self.distribution} {self.distribution_version or ''}".strip()

    def fail(self, status: Status, detail: str) -> None:
        """Mark the plugin unusable; the first reason given is kept."""
        if self.status is Status.READY:
            self.status, self.detail = status, detail

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "origin": self.origin.value,
            "source": self.source,
            "status": self.status.value,
            "detail": self.detail,
            "entry_point": self.entry_point,
            "module": self.module,
            "distribution": self.distribution,
            "distribution_version": self.distribution_version,
            "file": self.file,
            "hooks": [h.to_dict() for h in self.hooks],
            "load_ms": None if self.load_ms is None else round(self.load_ms, 3),
        }


@dataclass
class ComponentRecord:
    """One guard, adapter, evaluator or edit: a row of ``invarlock plugins``.

    ``plugin`` is ``None`` for an edit (edits are built in, not plugins); ``instance`` is
    the object the registry built from the class's defaults when it checked it."""

    kind: Kind
    name: str
    plugin: PluginInfo | None
    cls: type | None = field(default=None, repr=False)
    instance: Any = field(default=None, repr=False, compare=False)
    status: Status = Status.READY
    detail: str = ""
    backend: str | None = None
    version: str | None = None
    summary: str = ""
    hooks: list[HookImplInfo] = field(default_factory=list)

    @property
    def origin(self) -> Origin:
        return self.plugin.origin if self.plugin is not None else Origin.BUILTIN

    @property
    def usable(self) -> bool:
        return self.status is Status.READY

    @property
    def class_path(self) -> str | None:
        if self.cls is None:
            return None
        return f"{self.cls.__module__}:{self.cls.__qualname__}"

    def fail(self, status: Status, detail: str) -> None:
        if self.status is Status.READY:
            self.status, self.detail = status, detail

    def status_text(self) -> str:
        """The Status column: ``✅ Ready``, ``⛔ needs <pkg>``, ``❌ <error>``, ``🚫 blocked``."""
        if self.status is Status.READY:
            return "✅ Ready"
        if self.status is Status.NEEDS:
            return f"⛔ needs {self.detail}"
        if self.status is Status.BLOCKED:
            return f"🚫 blocked ({self.detail})" if self.detail else "🚫 blocked"
        return f"❌ {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        info = self.plugin
        return {
            "name": self.name,
            "kind": self.kind.value,
            "origin": self.origin.value,
            "backend": self.backend,
            "version": self.version,
            "status": self.status.value,
            "detail": self.detail,
            "summary": self.summary,
            "class": self.class_path,
            "plugin": info.name if info else None,
            "module": info.module if info else None,
            "entry_point": info.entry_point if info else None,
            "distribution": info.distribution if info else None,
            "distribution_version": info.distribution_version if info else None,
            "file": (info.file if info else None) or _source_file(self.cls),
            "hooks": [h.to_dict() for h in self.hooks],
        }


def _source_file(cls: type | None) -> str | None:
    """The file defining ``cls``, for rows whose plugin has no file of its own."""
    import inspect

    if cls is None:
        return None
    try:
        return inspect.getsourcefile(cls)
    except TypeError:
        return None
