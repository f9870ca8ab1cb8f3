"""Building guard results: threshold judgement, the result mapping, the ``policy`` check."""

from __future__ import annotations

from collections.abc import Mapping
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


def check_policy(guard: str, policy: Any) -> Mapping[str, Any]:
    """The guard's YAML block handed to ``prepare``: a mapping or ``None``."""
    if policy is None:
        return {}
    if not isinstance(policy, Mapping):
        raise TypeError(f"{guard} guard: policy must be a mapping or None, got {policy!r}")
    return policy
