"""The run's events log: one JSON object per line, flushed as it happens.

Every hook call is logged with the implementing plugins and its duration, next to the
runner's own phase events, so a crashed or interrupted run still leaves a trail.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from invarlock.core.jsonsafe import json_safe


class EventLog:
    """Append-only JSON-lines log at ``path`` (``None``: keep events in memory only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: IO[str] | None = path.open("a", encoding="utf-8") if path is not None else None
        self._t0 = time.perf_counter()
        self.events: list[dict[str, Any]] = []

    def emit(self, event: str, **fields: Any) -> None:
        record = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "elapsed_s": round(time.perf_counter() - self._t0, 6),
            "event": event,
            **{k: json_safe(v) for k, v in fields.items()},
        }
        self.events.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()

    def hook_called(
        self,
        hook: str,
        plugins: list[str],
        kwargs: Mapping[str, Any],
        duration_s: float,
        error: BaseException | None,
    ) -> None:
        """Listener for :class:`~invarlock.plugins.tracing.HookMonitor`."""
        fields: dict[str, Any] = {
            "hook": hook,
            "plugins": plugins,
            "duration_s": round(duration_s, 6),
        }
        for key in ("guard_name", "adapter_name"):
            if key in kwargs:
                fields[key.removesuffix("_name")] = kwargs[key]
        if error is not None:
            fields["error"] = f"{type(error).__name__}: {error}"
        self.emit("hook", **fields)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
