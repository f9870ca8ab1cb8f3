"""Whole-model integrity: a digest of every parameter and buffer, checked between phases.

The digest is :class:`invarlock.models.fingerprint.Fingerprint` (xxHash3-128 of each distinct
tensor memory). It detects accidental or buggy changes, not an adversary: plugin code runs
in-process and could do anything, including patching this module.

:class:`IntegrityMonitor` is what the runner uses. It takes the fingerprint at load, checks
the whole model after each plugin call that could change it, names what changed and who ran
last, and after a restore says which tensors still differ from their state at load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from invarlock.core.errors import PluginError
from invarlock.core.structure import named_tensors
from invarlock.models.fingerprint import ALGORITHM, Fingerprint

#: Tensors outside the edit up to this size are copied into the snapshot too (norms,
#: biases, small buffers), so a change to them can be undone; larger ones are only hashed.
EXTRA_COPY_MAX_BYTES = 1024**2


class IntegrityError(PluginError):
    """Plugin code changed model tensors it must not touch (exit 3)."""


@dataclass
class IntegrityCheck:
    phase: str
    changed: list[str]
    plugin: str | None = None
    guard: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "phase": self.phase,
            "ok": not self.changed,
            "changed": self.changed,
            "plugin": self.plugin,
        }
        if self.guard is not None:
            data["guard"] = self.guard
        return data


@dataclass
class IntegrityMonitor:
    """The load fingerprint, what the model may hold now, and every check made."""

    at_load: Fingerprint
    expected: Fingerprint
    checks: list[IntegrityCheck] = field(default_factory=list)
    restored: bool | None = None
    verified: bool | None = None
    unrestorable: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, model: Any) -> IntegrityMonitor:
        fingerprint = Fingerprint.of(model)
        return cls(at_load=fingerprint, expected=fingerprint)

    @property
    def tampered(self) -> bool:
        """Whether any check found an unexpected change (the model then needs a restore)."""
        return any(c.changed for c in self.checks)

    def extra_snapshot_names(self, targets: Sequence[str], model: Any) -> list[str]:
        """Small tensors outside ``targets`` to copy as well, so that they can be restored."""
        tensors = named_tensors(model)
        inside = self.at_load.entries(targets)
        return [
            name
            for name in self.at_load.prints
            if name not in inside
            and name in tensors
            and tensors[name].numel() * tensors[name].element_size() <= EXTRA_COPY_MAX_BYTES
        ]

    def check(
        self, model: Any, phase: str, plugin: str | None = None, guard: str | None = None
    ) -> None:
        """Compare the whole model with what it should hold; raise naming what changed."""
        current = Fingerprint.of(model)
        changed = self.expected.changed(current)
        self.checks.append(IntegrityCheck(phase, changed, plugin, guard))
        if changed:
            shown = ", ".join(changed[:5]) + (
                f" and {len(changed) - 5} more" if len(changed) > 5 else ""
            )
            who = f" (plugin {plugin})" if plugin else ""
            where = f"guard {guard!r} {phase}" if guard else phase
            raise IntegrityError(f"model tensors changed during {where}{who}: {shown}")

    def accept_edit(self, model: Any, targets: Sequence[str], edit_name: str) -> None:
        """After the edit: its targets may change, nothing else; they become the expectation."""
        current = Fingerprint.of(model)
        allowed = self.at_load.entries(targets)
        outside = [name for name in self.at_load.changed(current) if name not in allowed]
        self.checks.append(IntegrityCheck("edit", outside, edit_name))
        if outside:
            raise IntegrityError(
                f"edit {edit_name!r} changed tensors outside its targets: {', '.join(outside[:5])}"
            )
        self.expected = current

    def after_restore(self, model: Any, restored: bool) -> list[str]:
        """Check the model against its load fingerprint; record and return what still differs."""
        current = Fingerprint.of(model)
        still = self.at_load.changed(current)
        self.checks.append(IntegrityCheck("restore", still))
        self.restored = restored and not still
        self.verified = not still
        self.unrestorable = still
        if not still:
            self.expected = self.at_load
        return still

    def to_dict(self) -> dict[str, Any]:
        return {
            "algorithm": ALGORITHM,
            "tensors": len(self.at_load.prints),
            "bytes": self.at_load.nbytes,
            "digest_at_load": self.at_load.digest,
            "checks": [c.to_dict() for c in self.checks],
            "restored": self.restored,
            "verified": self.verified,
            "unrestorable": self.unrestorable,
        }
