"""The ``invariants`` guard: what an in-place weight edit must never change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from invarlock.core.api import Guard
from invarlock.core.options import coerce
from invarlock.core.structure import storage_key, tied_groups
from invarlock.guards._results import (
    MESSAGE_CAP,
    METRICS_CAP,
    check_policy,
    name_list,
    not_prepared,
    result,
)
from invarlock.guards._ties import declared_tie_notes, declared_ties
from invarlock.guards.finite import checkable_count, nonfinite_tensors

#: name -> (kind, shape, dtype, device) of every parameter (and buffer) alias.
TensorTable = dict[str, tuple[str, tuple[int, ...], str, str]]


@dataclass
class _Snapshot:
    tensors: TensorTable
    parameter_count: int
    ties: list[list[str]]
    modules: dict[str, str]
    nonfinite: list[str]


class InvariantsGuard(Guard):
    """Abort when the edit changed the model's structure, tensors' metadata or finiteness.

    Compares the edited model with the state captured before the edit: every parameter's
    and buffer's shape, dtype and device, the parameter count, tied weights (names sharing
    storage, cross-checked with the ties transformers and the adapter declare), the module
    tree (qualified name and class) and that no tensor became NaN/Inf. Any violation
    aborts. Tensors already non-finite before the edit are reported as warnings only.

    Args:
        check_buffers: Also check buffers (shape, dtype, device, finiteness).
        check_finite: Check that no parameter (or buffer) became NaN or ±Inf.
        check_structure: Check that no module was added, removed or changed class.
    """

    name: ClassVar[str] = "invariants"
    requires: ClassVar[tuple[str, ...]] = ("torch",)

    def __init__(
        self, check_buffers: bool = True, check_finite: bool = True, check_structure: bool = True
    ) -> None:
        key = f"guards.{self.name}"
        self.check_buffers = coerce(check_buffers, bool, f"{key}.check_buffers")
        self.check_finite = coerce(check_finite, bool, f"{key}.check_finite")
        self.check_structure = coerce(check_structure, bool, f"{key}.check_structure")
        self._baseline: _Snapshot | None = None

    def prepare(self, model: Any, adapter: Any, calib: Any, policy: Any) -> dict[str, Any]:
        """Capture tensor metadata, ties, module tree and already non-finite tensors."""
        check_policy(self.name, policy)
        snapshot = self._capture(model)
        description = adapter.describe(model) if adapter is not None else None
        warnings = declared_tie_notes(model, snapshot.ties, declared_ties(model, description))
        if snapshot.nonfinite:
            warnings.append(
                f"model already holds non-finite values before the edit in "
                f"{name_list(snapshot.nonfinite)}; only newly non-finite tensors will fail"
            )
        self._baseline = snapshot
        return {
            "ready": True,
            "tensors": len(snapshot.tensors),
            "parameters": snapshot.parameter_count,
            "tie_groups": snapshot.ties,
            "modules": len(snapshot.modules),
            "nonfinite": snapshot.nonfinite[:METRICS_CAP],
            "warnings": warnings,
        }

    def validate(self, model: Any, adapter: Any, context: Mapping[str, Any]) -> dict[str, Any]:
        """Compare the edited model with the snapshot; any violation aborts, naming the first."""
        if self._baseline is None:
            raise not_prepared(self.name)
        before, after = self._baseline, self._capture(model, finite=False)
        violations = []
        if self.check_structure:
            violations += _compare_modules(before.modules, after.modules)
        violations += _compare_tensors(before.tensors, after.tensors)
        if after.parameter_count != before.parameter_count:
            detail = f"parameter count changed {before.parameter_count} → {after.parameter_count}"
            violations.append(_violation("parameter_count", "<model>", detail))
        violations += _compare_ties(model, before.ties)
        metrics: dict[str, Any] = {
            "tensors": len(after.tensors),
            "parameters": after.parameter_count,
            "tie_groups": len(before.ties),
            "modules": len(after.modules),
        }
        warnings = []
        if self.check_finite:
            named = self._finite_targets(model)
            metrics["finite_checked"] = checkable_count(named)
            already = set(before.nonfinite)
            for name in nonfinite_tensors(named):
                if name in already:
                    continue
                violations.append(_violation("nonfinite", name, f"{name!r} became non-finite"))
            if before.nonfinite:
                warnings.append(f"non-finite before the edit: {name_list(before.nonfinite)}")
        if not violations:
            return result(
                "continue", "structure, tensors, ties and finiteness unchanged", metrics, warnings
            )
        metrics["violation_count"] = len(violations)
        metrics["violations"] = violations[:METRICS_CAP]
        details = "; ".join(v["detail"] for v in violations[:MESSAGE_CAP])
        more = len(violations) - MESSAGE_CAP
        suffix = f"; and {more} more" if more > 0 else ""
        count = f"{len(violations)} invariant violation{'s' if len(violations) > 1 else ''}"
        return result("abort", f"{count}: {details}{suffix}", metrics, warnings)

    def _finite_targets(self, model: Any) -> list[tuple[str, Any]]:
        """Each parameter (and buffer) tensor once, by name, for the finiteness check."""
        named = list(model.named_parameters())
        if self.check_buffers:
            named += list(model.named_buffers())
        return named

    def _capture(self, model: Any, finite: bool = True) -> _Snapshot:
        tensors: TensorTable = {}
        for name, param in model.named_parameters(remove_duplicate=False):
            tensors[name] = _describe("parameter", param)
        if self.check_buffers:
            for name, buffer in model.named_buffers(remove_duplicate=False):
                tensors[name] = _describe("buffer", buffer)
        nonfinite = []
        if finite and self.check_finite:
            nonfinite = nonfinite_tensors(self._finite_targets(model))
        return _Snapshot(
            tensors=tensors,
            parameter_count=sum(p.numel() for p in model.parameters()),
            ties=tied_groups(model),
            modules=(
                {name: type(m).__name__ for name, m in model.named_modules()}
                if self.check_structure
                else {}
            ),
            nonfinite=nonfinite,
        )


def _describe(kind: str, tensor: Any) -> tuple[str, tuple[int, ...], str, str]:
    return kind, tuple(tensor.shape), str(tensor.dtype), str(tensor.device)


def _violation(check: str, target: str, detail: str) -> dict[str, str]:
    return {"check": check, "name": target, "detail": detail}


def _compare_modules(before: dict[str, str], after: dict[str, str]) -> list[dict[str, str]]:
    found = []
    for name, cls in before.items():
        label = name or "<root>"
        if name not in after:
            found.append(_violation("structure", label, f"module {label!r} ({cls}) was removed"))
        elif after[name] != cls:
            detail = f"module {label!r} changed class {cls} → {after[name]}"
            found.append(_violation("structure", label, detail))
    for name, cls in after.items():
        if name not in before:
            found.append(_violation("structure", name, f"module {name!r} ({cls}) was added"))
    return found


def _compare_tensors(before: TensorTable, after: TensorTable) -> list[dict[str, str]]:
    found = []
    for name, (kind, shape, dtype, device) in before.items():
        if name not in after:
            found.append(_violation("missing", name, f"{kind} {name!r} is missing"))
            continue
        _, new_shape, new_dtype, new_device = after[name]
        for check, old, new in (
            ("shape", shape, new_shape),
            ("dtype", dtype, new_dtype),
            ("device", device, new_device),
        ):
            if old != new:
                detail = f"{kind} {name!r} changed {check} {old} → {new}"
                found.append(_violation(check, name, detail))
    for name, (kind, *_) in after.items():
        if name not in before:
            found.append(_violation("unexpected", name, f"new {kind} {name!r} appeared"))
    return found


def _compare_ties(model: Any, ties: list[list[str]]) -> list[dict[str, str]]:
    """Tie groups whose members no longer share storage (missing names are reported elsewhere)."""
    params = dict(model.named_parameters(remove_duplicate=False))
    found = []
    for group in ties:
        keys = {storage_key(params[name]) for name in group if name in params}
        if len(keys) > 1:
            detail = f"tied weights {group} no longer share storage"
            found.append(_violation("untied", group[0], detail))
    return found
