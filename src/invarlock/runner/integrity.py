"""Whole-model integrity: a digest of every parameter and buffer, checked between phases.

:class:`Fingerprint` hashes each distinct tensor memory once (tied names share one entry,
under the first name in model order) with xxHash3-128 over the raw bytes: about 8 GB/s on
one core against 0.6 GB/s for SHA-256 (``benchmarks/bench_integrity.py``). It detects
accidental or buggy changes, not an adversary: plugin code runs in-process and could do
anything, including patching this module.

:class:`IntegrityMonitor` is what the runner uses. It takes the fingerprint at load, checks
the whole model after each plugin call that could change it, names what changed and who ran
last, and after a restore says which tensors still differ from their state at load.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import xxhash

from invarlock.core.errors import PluginError, RestoreError
from invarlock.core.structure import dtype_name, storage_key
from invarlock.runner.snapshot import _raw_bytes, named_tensors

if TYPE_CHECKING:
    import torch

ALGORITHM = "xxh3-128"
#: Tensors outside the edit up to this size are copied into the snapshot too (norms,
#: biases, small buffers), so a change to them can be undone; larger ones are only hashed.
EXTRA_COPY_MAX_BYTES = 1024**2
#: Below this many bytes hashing stays on the calling thread.
_PARALLEL_MIN_BYTES = 64 * 1024**2
_UNREADABLE = "unreadable"


class IntegrityError(PluginError):
    """Plugin code changed model tensors it must not touch (exit 3)."""


@dataclass(frozen=True)
class TensorPrint:
    dtype: str
    shape: tuple[int, ...]
    digest: str


def _digest(tensor: torch.Tensor, name: str) -> str:
    try:
        return xxhash.xxh3_128_hexdigest(_raw_bytes(tensor, name))
    except RestoreError:  # meta (offloaded) or sparse tensors cannot be read
        return _UNREADABLE


class Fingerprint:
    """Per-tensor digests of a model; ``canonical`` maps every tensor name to its entry."""

    def __init__(
        self, prints: dict[str, TensorPrint], canonical: dict[str, str], nbytes: int = 0
    ) -> None:
        self.prints = prints
        self.canonical = canonical
        self.nbytes = nbytes

    @classmethod
    def of(cls, model: Any) -> Fingerprint:
        tensors = named_tensors(model)
        first: dict[tuple[Any, ...], str] = {}
        for name in tensors:  # model order: a tied embedding is named as its owner
            first.setdefault(storage_key(tensors[name]), name)
        canonical = {name: first[storage_key(t)] for name, t in tensors.items()}
        names = sorted(set(first.values()))
        items = [(name, tensors[name]) for name in names]
        total = sum(t.numel() * t.element_size() for _, t in items)
        workers = min(os.cpu_count() or 1, 4)
        if total < _PARALLEL_MIN_BYTES or workers < 2:
            digests = [_digest(t, n) for n, t in items]
        else:  # xxhash releases the GIL on large buffers
            with ThreadPoolExecutor(workers, thread_name_prefix="invarlock-integrity") as pool:
                digests = list(pool.map(lambda item: _digest(item[1], item[0]), items))
        prints = {
            name: TensorPrint(dtype_name(t.dtype), tuple(t.shape), d)
            for (name, t), d in zip(items, digests, strict=True)
        }
        return cls(prints, canonical, total)

    @property
    def readable(self) -> bool:
        """Whether every tensor's bytes were read (offloaded or sparse ones cannot be)."""
        return all(p.digest != _UNREADABLE for p in self.prints.values())

    @property
    def digest(self) -> str:
        """One digest over every entry (name, dtype, shape, tensor digest) in name order."""
        combined = xxhash.xxh3_128()
        for name in sorted(self.prints):
            p = self.prints[name]
            combined.update(f"{name}\0{p.dtype}\0{list(p.shape)}\0{p.digest}\n".encode())
        return combined.hexdigest()

    def changed(self, other: Fingerprint) -> list[str]:
        """Names whose entry differs between ``self`` and ``other`` (added or removed too);
        an unreadable tensor counts as unchanged, since nothing can be said about it."""
        names = sorted(set(self.prints) | set(other.prints))
        out = []
        for name in names:
            a, b = self.prints.get(name), other.prints.get(name)
            unreadable = a is not None and b is not None and _UNREADABLE in (a.digest, b.digest)
            if a != b and not unreadable:
                out.append(name)
        return out

    def entries(self, names: Iterable[str]) -> set[str]:
        """The canonical entries that the tensor ``names`` live in."""
        return {self.canonical.get(name, name) for name in names}


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
