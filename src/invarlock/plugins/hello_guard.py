"""A hook-style example plugin: one guard, handed to the host by a registration hook.

Load it with ``invarlock plugins -p invarlock.plugins.hello_guard`` or list it under
``plugins.load`` in a config; then put ``hello`` in ``guards.order``. The same module
shape works as a local ``invarlock_plugins.py`` file or behind an ``invarlock.hooks``
entry point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from invarlock import hookimpl
from invarlock.core.api import Guard


class HelloGuard(Guard):
    """Counts the parameters the edit touched and fails when it touched none.

    Args:
        require_change: Abort when the edit changed no parameter at all.
    """

    name = "hello"

    def __init__(self, require_change: bool = False) -> None:
        self.require_change = require_change
        self._fingerprints: dict[str, float] | None = None

    def prepare(self, model: Any, adapter: Any, calib: Any, policy: Any) -> dict[str, Any]:
        self._fingerprints = _fingerprints(model)
        return {"ready": True, "tensors": len(self._fingerprints)}

    def validate(self, model: Any, adapter: Any, context: Mapping[str, Any]) -> dict[str, Any]:
        if self._fingerprints is None:
            raise RuntimeError("HelloGuard.validate() called before prepare()")
        after = _fingerprints(model)
        changed = sorted(n for n, v in after.items() if v != self._fingerprints.get(n))
        if not changed and self.require_change:
            return {"passed": False, "action": "abort", "message": "the edit changed nothing"}
        return {
            "passed": True,
            "action": "continue",
            "message": f"hello: the edit changed {len(changed)} of {len(after)} tensors",
            "metrics": {"changed": len(changed), "tensors": len(after)},
        }


def _fingerprints(model: Any) -> dict[str, float]:
    """A cheap per-tensor fingerprint (sum of squares) of every parameter."""
    import torch

    with torch.no_grad():
        return {n: float(p.double().square().sum()) for n, p in model.named_parameters()}


@hookimpl
def invarlock_register_guards(register: Callable[..., None]) -> None:
    register(HelloGuard)
