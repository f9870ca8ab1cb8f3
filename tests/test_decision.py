"""The run's decision as a pure function of the checked guard outcomes (no model)."""

from __future__ import annotations

import pytest

from invarlock.core.errors import EXIT_KEPT, EXIT_PLUGIN, EXIT_ROLLED_BACK
from invarlock.core.results import (
    PREPARE,
    VALIDATE,
    GuardOutcome,
    check_prepare_result,
    check_validate_result,
    failed_outcome,
)
from invarlock.runner.decision import KEPT, ROLLED_BACK, WARNED, Decision, decide


def ok(guard: str, phase: str = VALIDATE) -> GuardOutcome:
    if phase == PREPARE:
        return check_prepare_result(guard, {"ready": True})
    return check_validate_result(guard, {"passed": True, "action": "continue", "message": "ok"})


def verdict(guard: str, action: str, message: str) -> GuardOutcome:
    return check_validate_result(guard, {"passed": False, "action": action, "message": message})


NOT_READY = check_prepare_result("spectral", {"ready": False, "message": "no weights in scope"})
CRASHED = failed_outcome("rmt", VALIDATE, "guard 'rmt' validate() raised ValueError: x", "trace")

CASES = [
    pytest.param([], None, True, Decision(KEPT, EXIT_KEPT, (), True, False), id="no-guards"),
    pytest.param(
        [ok("a", PREPARE), ok("a")], None, True, Decision(KEPT, EXIT_KEPT, (), True, False),
        id="all-continue",
    ),
    pytest.param(
        [ok("a"), verdict("b", "warn", "drifted"), verdict("c", "warn", "slow")], None, True,
        Decision(WARNED, EXIT_KEPT, ("b: drifted", "c: slow"), True, False),
        id="warn-keeps",
    ),
    pytest.param(
        [verdict("b", "warn", "drifted"), verdict("c", "abort", "broke")], None, True,
        Decision(ROLLED_BACK, EXIT_ROLLED_BACK, ("c (validate): broke",), True, True),
        id="abort-beats-warn",
    ),
    pytest.param(
        [ok("a"), CRASHED], None, True,
        Decision(ROLLED_BACK, EXIT_PLUGIN, (f"rmt (validate): {CRASHED.message}",), True, True),
        id="crashed-guard-exit-3",
    ),
    pytest.param(
        [verdict("c", "abort", "broke"), CRASHED], None, True,
        Decision(
            ROLLED_BACK,
            EXIT_PLUGIN,
            ("c (validate): broke", f"rmt (validate): {CRASHED.message}"),
            True,
            True,
        ),
        id="any-crash-is-exit-3",
    ),
    pytest.param(
        [ok("a")], "perplexity ratio 1.31 > 1.10", True,
        Decision(ROLLED_BACK, EXIT_ROLLED_BACK, ("perplexity ratio 1.31 > 1.10",), True, True),
        id="gate-failure",
    ),
    pytest.param(
        [verdict("c", "abort", "broke")], "ratio too high", True,
        Decision(
            ROLLED_BACK, EXIT_ROLLED_BACK, ("c (validate): broke", "ratio too high"), True, True
        ),
        id="abort-and-gate",
    ),
    pytest.param(
        [ok("invariants", PREPARE), NOT_READY], None, False,
        Decision(ROLLED_BACK, EXIT_ROLLED_BACK, (f"spectral (prepare): {NOT_READY.message}",),
                 False, False),
        id="prepare-abort-nothing-edited",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("outcomes", "gate", "edited", "expected"), CASES)
def test_decide(outcomes, gate, edited, expected) -> None:
    assert decide(outcomes, gate, edited=edited) == expected


def test_the_report_decision_keeps_its_shape() -> None:
    decision = decide([verdict("b", "warn", "drifted")])
    assert decision.to_dict() == {
        "status": "warned",
        "reasons": ["b: drifted"],
        "edit_applied": True,
        "model_restored": False,
    }
    assert not decision.rolls_back and decide([CRASHED]).rolls_back

