"""The smallest complete guard, commented line by line: read it before writing your own.

A hook-style plugin module: one ``Guard`` class, handed to the host by the registration
hook at the bottom. This package (``contrib/invarlock_hello``) installs it behind an
``invarlock.hooks`` entry point named ``hello``; then put ``hello`` in ``guards.order``.
The same module shape works as a local ``invarlock_plugins.py`` file or with
``-p invarlock_hello`` / ``plugins.load`` when the package is importable.
"""

# Postponed annotations keep type hints free at import time.
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# Only torch-free imports at module level: `invarlock plugins` imports every plugin to list
# it, and the listing must stay fast. torch is imported inside the methods that need it.
from invarlock import hookimpl
from invarlock.core.api import Guard


class HelloGuard(Guard):
    """Counts the parameters the edit touched and fails when it touched none.

    Args:
        require_change: Abort when the edit changed no parameter at all.
    """

    # The name used in `guards.order`, for this guard's YAML block and in `-p no:NAME`.
    name = "hello"

    # Every option is a keyword argument with a default: the listing constructs the guard
    # from its defaults to prove it works, and the YAML block `hello: {require_change: true}`
    # becomes `HelloGuard(require_change=True)`. The `Args:` docstring above is what
    # `invarlock plugins guards --explain hello` shows for each option.
    def __init__(self, require_change: bool = False) -> None:
        self.require_change = require_change
        self._fingerprints: dict[str, float] | None = None

    # Called once, before the edit. The same instance later runs validate(), so keep what
    # validate() needs on `self`. The returned mapping is written into report.json and comes
    # back as context["prepare"]; {"ready": False, "message": ...} would stop the run here.
    def prepare(self, model: Any, adapter: Any, calib: Any, policy: Any) -> dict[str, Any]:
        self._fingerprints = _fingerprints(model)
        return {"ready": True, "tensors": len(self._fingerprints)}

    # Called once, after the edit, with the edited model. Return passed/action/message (and
    # optionally metrics and warnings); "abort" rolls the edit back, "warn" keeps it.
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


# The hook that hands the class to the host. The host names it (from `HelloGuard.name`),
# checks it, lists it, and refuses a second plugin registering the same name.
@hookimpl
def invarlock_register_guards(register: Callable[..., None]) -> None:
    register(HelloGuard)
