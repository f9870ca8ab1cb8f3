"""Keep, warn or roll back: the run's decision, from the checked guard outcomes alone.

:func:`decide` is pure (no model, no report): the runner acts on the :class:`Decision` it
returns (restores the snapshot when it rolls back an applied edit) and records
:meth:`Decision.to_dict` as ``report.json``'s ``decision``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from invarlock.core.errors import EXIT_KEPT, EXIT_PLUGIN, EXIT_ROLLED_BACK
from invarlock.core.results import GuardOutcome

__all__ = ["KEPT", "ROLLED_BACK", "WARNED", "Decision", "decide"]

KEPT, WARNED, ROLLED_BACK = "kept", "warned", "rolled_back"


@dataclass(frozen=True)
class Decision:
    """What the run does with the edit.

    Attributes:
        status: ``kept``, ``warned`` (kept, with warnings) or ``rolled_back``.
        exit_code: 0 kept or warned, 1 rolled back, 3 when a guard itself failed (raised or
            broke the result contract: a plugin bug, not a verdict on the edit).
        reasons: one line per aborting guard and the evaluation gate (rolled back), or per
            warning guard (warned).
        edit_applied: whether the edit had changed the model when the decision was made.
        model_restored: whether the decision restores the model (an applied edit rolled back).
    """

    status: str
    exit_code: int
    reasons: tuple[str, ...]
    edit_applied: bool
    model_restored: bool

    @property
    def rolls_back(self) -> bool:
        return self.status == ROLLED_BACK

    def to_dict(self) -> dict[str, Any]:
        """``report.json``'s ``decision``."""
        return {
            "status": self.status,
            "reasons": list(self.reasons),
            "edit_applied": self.edit_applied,
            "model_restored": self.model_restored,
        }


def decide(
    outcomes: Iterable[GuardOutcome], gate_failure: str | None = None, *, edited: bool = True
) -> Decision:
    """Decide on every guard outcome so far, and the evaluation gate's failure if any.

    Any ``abort`` (a guard that failed counts as one) or a gate failure rolls back; otherwise
    any ``warn`` keeps the edit with warnings. ``edited`` says whether the edit was applied
    (``False`` when a guard's prepare stopped the run before it).
    """
    outcomes = list(outcomes)
    aborts = [o for o in outcomes if o.aborts]
    if aborts or gate_failure:
        reasons = [f"{o.guard} ({o.phase}): {o.message}" for o in aborts]
        reasons += [gate_failure] if gate_failure else []
        crashed = any(o.error is not None for o in aborts)
        return Decision(
            status=ROLLED_BACK,
            exit_code=EXIT_PLUGIN if crashed else EXIT_ROLLED_BACK,
            reasons=tuple(reasons),
            edit_applied=edited,
            model_restored=edited,
        )
    warns = [o for o in outcomes if o.action == "warn"]
    return Decision(
        status=WARNED if warns else KEPT,
        exit_code=EXIT_KEPT,
        reasons=tuple(f"{o.guard}: {o.message}" for o in warns),
        edit_applied=edited,
        model_restored=False,
    )
