"""Which 2-D weights a weight guard checks, and which of them the edit touched.

The scope follows :mod:`invarlock.core.selection` (one pattern language and tie rule with
the edit): by default every ``nn.Linear`` / transformers ``Conv1D`` weight inside the
block container; ``include`` patterns replace that default (reaching Linear, Conv1D and
``nn.Embedding`` weights anywhere in the model); ``exclude`` patterns then drop weights.
A pattern matches a module name or its weight's parameter name.

torch is imported inside the functions: this module is imported by plugin listings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from invarlock.core import selection
from invarlock.core.edit import EditSummary
from invarlock.guards._results import METRICS_CAP

#: The kinds of weight a guard checks.
_CHECKED = (*selection.LINEAR_KINDS, "Embedding")


@dataclass(frozen=True)
class ScopedWeight:
    """One in-scope weight: its parameter name, module name and output-channel axis."""

    name: str
    module_name: str
    #: 0 for ``nn.Linear`` (out, in); 1 for transformers ``Conv1D`` (in, out).
    out_axis: int
    #: An ``nn.Embedding`` table: in scope only when an ``include`` pattern names it.
    embedding: bool = False


@dataclass
class Scope:
    """The resolved scope of a weight guard."""

    weights: list[ScopedWeight]
    #: Qualified name of the block container, or None when the model has no ModuleList.
    container: str | None
    #: Reasons the scope is unusable (``prepare`` reports ``ready: False``).
    problems: list[str] = field(default_factory=list)
    #: Things worth a warning that do not stop the run.
    notes: list[str] = field(default_factory=list)


def _scoped(candidate: selection.Candidate) -> ScopedWeight:
    assert candidate.out_axis is not None
    embedding = candidate.kind == "Embedding"
    return ScopedWeight(candidate.param, candidate.module, candidate.out_axis, embedding)


def resolve_scope(model: Any, include: tuple[str, ...], exclude: tuple[str, ...]) -> Scope:
    """Resolve the in-scope weights of ``model`` for the given patterns."""
    found = selection.select(model, include or None, exclude)
    scope = Scope(weights=[], container=found.container)
    if include:
        checkable = [c for c in selection.candidates(model) if c.kind in _CHECKED]
        names = [n for c in checkable for n in (c.module, c.param)]
        for pattern in selection.unmatched(include, names):
            scope.problems.append(
                f"include pattern {pattern!r} matches no Linear/Conv1D/Embedding weight"
            )
    elif found.container is None:
        scope.notes.append("model has no nn.ModuleList; checking every Linear/Conv1D weight")
    reached = [c for c in found.reached if c.kind in _CHECKED]
    names = [n for c in reached for n in (c.module, c.param)]
    for pattern in selection.unmatched(exclude, names):
        scope.notes.append(f"exclude pattern {pattern!r} matches no in-scope weight")
    kept, _ = selection.unique([c for c in found.kept if c.kind in _CHECKED])
    scope.weights = [_scoped(c) for c in kept]
    if not scope.weights and not scope.problems:
        scope.problems.append(
            f"no Linear/Conv1D weight in scope (include={list(include)}, "
            f"exclude={list(exclude)}, block container={found.container!r})"
        )
    return scope


def edited_layers(context: Any) -> frozenset[str] | None:
    """Module names the edit wrote (``context["edit"].modules``), or None without an edit."""
    if context is None:
        return None
    if not isinstance(context, Mapping):
        raise TypeError(f"validate context must be a mapping, got {type(context).__name__}")
    edit = context.get("edit")
    if edit is None:
        return None
    if not isinstance(edit, EditSummary):
        raise TypeError(
            "context['edit'] must be the EditSummary a run passes (validate_context builds it),"
            f" got {type(edit).__name__}"
        )
    return edit.modules


def edit_coverage(weights: list[ScopedWeight], edited: frozenset[str] | None) -> dict[str, Any]:
    """Metrics saying which edited layers the guard checked (empty without edit info)."""
    if edited is None:
        return {}
    in_scope = {w.module_name for w in weights} | {w.name for w in weights}
    outside = sorted(name for name in edited if name not in in_scope)
    return {
        "edited_checked": len(edited) - len(outside),
        "edited_unchecked": outside[:METRICS_CAP],
        "edited_unchecked_count": len(outside),
    }
