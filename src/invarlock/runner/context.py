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
    """One run. ``state`` is free for plugins to share data between their hooks."""

    run_id: str
    config: RunConfig
    run_dir: Path
    plugins: PluginManager
    events: EventLog
    started_at: datetime
    state: dict[str, Any] = field(default_factory=dict)
