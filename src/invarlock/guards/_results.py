"""Building guard results: threshold judgement and the result mapping."""

from __future__ import annotations

from typing import Any

#: How many offending tensors or layers a result lists in its metrics.
METRICS_CAP = 10
#: How many names a message spells out before "and N more".
MESSAGE_CAP = 3


def judge(value: float, warn: float, abort: float) -> str:
    """``"abort"`` above ``abort`` (or NaN), ``"warn"`` above ``warn``, else ``"continue"``."""
    if not value <= abort:
        return "abort"
    if value > warn:
        return "warn"
    return "continue"


def result(
    action: str,
    message: str,
    metrics: dict[str, Any],
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """A GuardResult mapping; ``passed`` is false only for ``"abort"``."""
    return {
        "passed": action != "abort",
        "action": action,
        "message": message,
        "metrics": metrics,
        "warnings": list(warnings or []),
    }


def name_list(names: list[str], cap: int = MESSAGE_CAP) -> str:
    """``'a', 'b', 'c' and 2 more`` for messages."""
    shown = ", ".join(repr(name) for name in names[:cap])
    rest = len(names) - cap
    return f"{shown} and {rest} more" if rest > 0 else shown


def not_prepared(guard: str) -> RuntimeError:
    """The error for ``validate`` called before ``prepare``."""
    return RuntimeError(f"{guard} guard: validate() called before prepare()")
