"""What a run hands to lifecycle hooks: its id, configuration, directory and events log.

The protocols below name exactly what a plugin may use of the run's configuration, plugin
manager and events log; the runner's own classes satisfy them (this module imports nothing
from the runner or the plugin machinery).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

__all__ = ["RunConfigView", "RunContext", "RunEvents", "RunPlugins"]


class RunConfigView(Protocol):
    """The run's validated configuration, as a plugin may read it."""

    #: The configuration as the YAML file gave it (``--set`` applied), a plain dict.
    raw: dict[str, Any]


class RunPlugins(Protocol):
    """The run's plugin manager, as a plugin may query it."""

    def problems(self) -> list[str]:
        """One line per plugin or component that is not usable."""
        ...

    def names(self, kind: Any, *, usable_only: bool = True) -> list[str]:
        """Registered component names of one kind (``"guard"``, ``"adapter"``, ...)."""
        ...


class RunEvents(Protocol):
    """The run's events log (``events.jsonl``)."""

    def emit(self, event: str, **fields: Any) -> None:
        """Append one event; ``fields`` are made JSON-safe."""
        ...


@dataclass
class RunContext:
    """One run. ``state`` is free for plugins to share data between their hooks.

    Attributes:
        run_id: the run's id, e.g. ``20250101-120000-a1b2c3``.
        config: the validated run configuration (``config.raw`` is the YAML as a dict).
        run_dir: the directory holding ``report.json`` and ``events.jsonl``.
        plugins: the plugin manager of this run (``problems()``, ``names(kind)``).
        events: the run's events log; ``events.emit(name, **fields)`` adds a line.
        started_at: when the run started (UTC).
        state: a dict free for plugins; keys namespaced by the plugin's name avoid clashes.
    """

    run_id: str
    config: RunConfigView
    run_dir: Path
    plugins: RunPlugins
    events: RunEvents
    started_at: datetime
    state: dict[str, Any] = field(default_factory=dict)
