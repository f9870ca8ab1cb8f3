"""The run report (``report.json``), written atomically: a reader never sees half a file."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invarlock.core.results import jsonable

REPORT_SCHEMA = "invarlock.report/v1"


@dataclass
class RunReport:
    """Everything a run decided and measured; ``to_dict()`` is what ``report.json`` holds."""

    run_id: str
    run_dir: str = ""
    status: str = "running"  # kept | warned | rolled_back | error | interrupted
    exit_code: int = 0
    started_at: str = ""
    finished_at: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    edit: dict[str, Any] | None = None
    snapshot: dict[str, Any] | None = None
    guards: list[dict[str, Any]] = field(default_factory=list)
    skipped_guards: list[dict[str, str]] = field(default_factory=list)
    decision: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] | None = None
    plugins: list[dict[str, Any]] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"schema": REPORT_SCHEMA, **self.__dict__})


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` via a temporary file in the same directory and
    ``os.replace``; on any failure the temporary file is removed and ``path`` is untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
