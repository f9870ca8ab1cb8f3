"""The ``context`` mapping every guard's ``validate`` receives, built in one place.

The runner and the shipped pytest plugin's ``run_guard`` both call :func:`validate_context`,
so a guard tested with the fixtures sees exactly what it sees in a real run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from invarlock.core.edit import EditSummary


class ValidateContext(TypedDict):
    """What ``Guard.validate(model, adapter, context)`` and ``invarlock_guard_validate`` get.

    Attributes:
        prepare: this guard's own ``prepare`` result, as it returned it (``{}`` if none).
        edit: the edit's read-only :class:`~invarlock.core.edit.EditSummary` (``.name``,
            ``.params``, ``.layers``, ``.modules``, ``.parameters``, ``.to_dict()``), or
            ``None`` when no edit ran.
        policy: the guard's YAML block (the options its constructor received).
        model: the adapter's ``describe(model)``.
        run_id: the run's id (the name of its run directory unless ``output.run_name``).
    """

    prepare: dict[str, Any]
    edit: EditSummary | None
    policy: dict[str, Any]
    model: dict[str, Any]
    run_id: str


def validate_context(
    *,
    prepare: Mapping[str, Any] | None,
    edit: EditSummary | None,
    policy: Mapping[str, Any],
    model: Mapping[str, Any],
    run_id: str,
) -> ValidateContext:
    """The validate ``context`` for one guard (see :class:`ValidateContext`)."""
    return {
        "prepare": dict(prepare or {}),
        "edit": edit,
        "policy": dict(policy),
        "model": dict(model),
        "run_id": run_id,
    }
