"""What a run hands to lifecycle hooks: its id, configuration, directory and events log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invarlock.plugins.manager import PluginManager
    from invarlock.runner.config import RunConfig
    from invarlock.runner.events import EventLog


@dataclass
class RunContext:
    """One run. ``state`` is free for plugins to share data between their hooks.

    Attributes:
        run_id: the run's id, e.g. ``20250101-120000-a1b2c3``.
        config: the validated run configuration (``config.raw`` is the YAML as a dict).
        run_dir: the directory holding ``report.json`` and ``events.jsonl``.
        plugins: the plugin manager of this run (components, problems, hook relay).
        events: the run's events log; ``events.emit(name, **fields)`` adds a line.
        started_at: when the run started (UTC).
        state: a dict free for plugins; keys namespaced by the plugin's name avoid clashes.
    """

    run_id: str
    config: RunConfig
    run_dir: Path
    plugins: PluginManager
    events: EventLog
    started_at: datetime
    state: dict[str, Any] = field(default_factory=dict)
