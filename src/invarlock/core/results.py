"""Checking what guards return, and the recorded outcome of each guard call.

A guard's ``validate`` must return a mapping with ``passed`` (bool), ``action``
(``continue``/``warn``/``abort``) and ``message`` (str); ``metrics`` (mapping) and
``warnings`` (list) are optional. Anything else is a failure of that guard, with a
message naming the guard and the key, and is treated as ``abort``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from invarlock.core.api import GUARD_ACTIONS
from invarlock.core.jsonsafe import json_safe

PREPARE = "prepare"
VALIDATE = "validate"


class MalformedGuardResult(ValueError):
    """A guard returned something that breaks the result contract."""


@dataclass
class GuardOutcome:
    """One guard call, checked: what the runner decides on and the report records.

    Attributes:
        guard: the guard's name (as in ``guards.order``).
        passed: the result's ``passed`` (for prepare: ``ready``).
        action: ``continue``, ``warn`` or ``abort``; a guard that raised or broke the
            contract is ``abort``.
        message: the result's message, or the host's description of the failure.
        metrics: the result's metrics.
        warnings: the result's warnings.
        duration_s: wall-clock seconds of the call (the field is ``duration_s``).
    """

    guard: str
    phase: str  # "prepare" or "validate"
    passed: bool
    action: str
    message: str
    metrics: dict[str, Any] = field(default_factory=dict)
    warnings: list[Any] = field(default_factory=list)
    error: str | None = None  # traceback or contract violation, when the guard failed itself
    duration_s: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict)  # prepare results are kept whole

    @property
    def aborts(self) -> bool:
        return self.action == "abort"

    def to_dict(self) -> dict[str, Any]:
        data = {
            "guard": self.guard,
            "phase": self.phase,
            "passed": self.passed,
            "action": self.action,
            "message": self.message,
            "metrics": json_safe(self.metrics),
            "warnings": json_safe(self.warnings),
            "duration_s": round(self.duration_s, 6),
        }
        if self.error is not None:
            data["error"] = self.error
        if self.phase == PREPARE:
            data["result"] = json_safe(self.raw)
        return data


def check_validate_result(guard: str, result: Any) -> GuardOutcome:
    """Turn a ``validate`` return value into an outcome, or raise MalformedGuardResult."""
    where = f"guard {guard!r} validate()"
    if result is None:
        raise MalformedGuardResult(
            f"{where} returned None; return a dict with passed, action, message"
        )
    if not isinstance(result, Mapping):
        raise MalformedGuardResult(f"{where} returned {type(result).__name__}, not a dict")
    missing = [k for k in ("passed", "action", "message") if k not in result]
    if missing:
        raise MalformedGuardResult(
            f"{where} result is missing key(s) {', '.join(map(repr, missing))}"
        )
    passed, action, message = result["passed"], result["action"], result["message"]
    if not isinstance(passed, bool):
        raise MalformedGuardResult(
            f"{where} key 'passed' must be a bool, got {type(passed).__name__}"
        )
    if action not in GUARD_ACTIONS:
        raise MalformedGuardResult(
            f"{where} key 'action' must be one of {', '.join(GUARD_ACTIONS)}, got {action!r}"
        )
    if not isinstance(message, str):
        raise MalformedGuardResult(
            f"{where} key 'message' must be a str, got {type(message).__name__}"
        )
    if not passed and action == "continue":
        raise MalformedGuardResult(
            f"{where} says passed=False with action 'continue'; use 'warn' or 'abort'"
        )
    metrics = result.get("metrics", {})
    if metrics is None:
        metrics = {}
    if not isinstance(metrics, Mapping):
        raise MalformedGuardResult(
            f"{where} key 'metrics' must be a dict, got {type(metrics).__name__}"
        )
    warnings = result.get("warnings", [])
    if warnings is None:
        warnings = []
    if not isinstance(warnings, (list, tuple)):
        raise MalformedGuardResult(
            f"{where} key 'warnings' must be a list, got {type(warnings).__name__}"
        )
    return GuardOutcome(guard, VALIDATE, passed, action, message, dict(metrics), list(warnings))


def check_prepare_result(guard: str, result: Any) -> GuardOutcome:
    """Turn a ``prepare`` return value into an outcome; ``ready: False`` aborts the run."""
    where = f"guard {guard!r} prepare()"
    if result is None:
        result = {}
    if not isinstance(result, Mapping):
        raise MalformedGuardResult(f"{where} returned {type(result).__name__}, not a dict")
    ready = result.get("ready", True)
    if not isinstance(ready, bool):
        raise MalformedGuardResult(
            f"{where} key 'ready' must be a bool, got {type(ready).__name__}"
        )
    message = str(result.get("message", "ready" if ready else "not ready"))
    warnings = result.get("warnings", []) or []
    if not isinstance(warnings, (list, tuple)):
        raise MalformedGuardResult(
            f"{where} key 'warnings' must be a list, got {type(warnings).__name__}"
        )
    return GuardOutcome(
        guard,
        PREPARE,
        passed=ready,
        action="continue" if ready else "abort",
        message=message,
        warnings=list(warnings),
        raw=dict(result),
    )


def failed_outcome(guard: str, phase: str, message: str, error: str) -> GuardOutcome:
    """The outcome of a guard that raised or broke the contract: treated as abort."""
    return GuardOutcome(guard, phase, passed=False, action="abort", message=message, error=error)
