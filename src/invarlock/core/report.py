"""The run report (``report.json``), written atomically: a reader never sees half a file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from invarlock.core.jsonsafe import json_safe

REPORT_SCHEMA = "invarlock.report/v1"


@dataclass
class RunReport:
    """Everything a run decided and measured; ``to_dict()`` is what ``report.json`` holds.

    Attributes:
        run_dir: the run directory (a string, as in the JSON).
        exit_code: the exit code the CLI returns.
        model: ``{"id", "adapter", **adapter.describe(model)}``.
        edit: ``EditResult.to_dict()``, or ``None`` when the edit never ran.
        snapshot: mode, tensors, bytes, digest, restored, verified.
        guards: one entry per guard call: ``GuardOutcome.to_dict()`` plus ``origin`` and
            ``options``; prepare entries carry the whole prepare result under ``result``.
        skipped_guards: installed guards not in ``guards.order``, with the reason.
        decision: status, reasons, edit_applied, model_restored.
        error: message and traceback when the run failed, else ``None``.
    """

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
    integrity: dict[str, Any] | None = None
    #: One entry per written format, with its files and the proof on load (exporters.run).
    exports: list[dict[str, Any]] | None = None
    plugins: list[dict[str, Any]] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    phases: list[dict[str, Any]] = field(default_factory=list)  # name, start_s, duration_s
    warnings: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"schema": REPORT_SCHEMA, **self.__dict__}
        if data["evaluation"] is None:
            del data["evaluation"]
        if data["integrity"] is None:
            del data["integrity"]  # absent when not applicable (the model was never loaded)
        return json_safe(data)
