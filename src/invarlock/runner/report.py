"""The run report (``report.json``), written atomically: a reader never sees half a file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invarlock.core.atomic import atomic_write
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
    evaluation: dict[str, Any] | None = None  # absent from report.json when None
    skipped_guards: list[dict[str, str]] = field(default_factory=list)
    decision: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] | None = None
    plugins: list[dict[str, Any]] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"schema": REPORT_SCHEMA, **self.__dict__}
        if data["evaluation"] is None:
            del data["evaluation"]
        return jsonable(data)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` via a temporary file in the same directory and
    ``os.replace``; on any failure the temporary file is removed and ``path`` is untouched."""
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    with atomic_write(path) as handle:
        handle.write(text)
