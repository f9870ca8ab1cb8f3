"""A hook-style plugin module for the main suite's ``-p MODULE`` tests: one guard, handed
to the host by ``invarlock_register_guards`` (contrib packages are not installed while the
main suite runs; ``contrib/invarlock_hello`` is the commented example)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from invarlock import hookimpl
from invarlock.core.api import Guard


class CountingGuard(Guard):
    """Counts the model's parameters before and after the edit."""

    name = "counting"

    def prepare(self, model: Any, adapter: Any, calib: Any, policy: Any) -> dict[str, Any]:
        return {"ready": True, "tensors": len(list(model.parameters()))}

    def validate(self, model: Any, adapter: Any, context: Mapping[str, Any]) -> dict[str, Any]:
        tensors = len(list(model.parameters()))
        return {"passed": True, "action": "continue", "message": f"{tensors} tensors"}


@hookimpl
def invarlock_register_guards(register: Callable[..., None]) -> None:
    register(CountingGuard)
