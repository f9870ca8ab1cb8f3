"""Which 2-D weights a weight guard checks, and which of them the edit touched.

The default scope is every ``nn.Linear`` / transformers ``Conv1D`` weight inside the
model's block container, found generically as the ``nn.ModuleList`` holding the most
parameters. ``include`` patterns replace that default (matching candidate weights anywhere
in the model, embedding tables included); ``exclude`` patterns then drop weights. Patterns
are fnmatch patterns on parameter names (``*`` also matches dots).

torch is imported inside the functions: this module is imported by plugin listings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from invarlock.core.edit import EditSummary
from invarlock.core.structure import block_container, output_axis
from invarlock.guards._results import METRICS_CAP


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


def candidate_weights(model: Any) -> list[ScopedWeight]:
    """Every Linear / Conv1D weight in the model, then every ``nn.Embedding`` table not tied
    to one of them (rows are its channels), each tensor once."""
    from torch import nn

    seen: set[int] = set()
    found: list[ScopedWeight] = []
    embeddings = []
    for module_name, module in model.named_modules():
        axis = output_axis(module)
        if axis is None and isinstance(module, nn.Embedding):
            embeddings.append((module_name, module))
        if axis is None or id(module.weight) in seen:
            continue
        seen.add(id(module.weight))
        name = f"{module_name}.weight" if module_name else "weight"
        found.append(ScopedWeight(name=name, module_name=module_name, out_axis=axis))
    for module_name, module in embeddings:
        if id(module.weight) not in seen:
            seen.add(id(module.weight))
            name = f"{module_name}.weight"
            found.append(ScopedWeight(name, module_name, out_axis=0, embedding=True))
    return found


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def resolve_scope(model: Any, include: tuple[str, ...], exclude: tuple[str, ...]) -> Scope:
    """Resolve the in-scope weights of ``model`` for the given patterns."""
    candidates = candidate_weights(model)
    container = block_container(model)
    scope = Scope(weights=[], container=container)
    if include:
        for pattern in include:
            if not any(fnmatchcase(w.name, pattern) for w in candidates):
                scope.problems.append(
                    f"include pattern {pattern!r} matches no Linear/Conv1D/Embedding weight"
                )
        selected = [w for w in candidates if _matches(w.name, include)]
    elif container is None:
        scope.notes.append("model has no nn.ModuleList; checking every Linear/Conv1D weight")
        selected = [w for w in candidates if not w.embedding]
    else:
        prefix = f"{container}." if container else ""
        selected = [w for w in candidates if w.name.startswith(prefix) and not w.embedding]
    for pattern in exclude:
        if not any(fnmatchcase(w.name, pattern) for w in selected):
            scope.notes.append(f"exclude pattern {pattern!r} matches no in-scope weight")
    scope.weights = [w for w in selected if not _matches(w.name, exclude)]
    if not scope.weights and not scope.problems:
        scope.problems.append(
            f"no Linear/Conv1D weight in scope (include={list(include)}, "
            f"exclude={list(exclude)}, block container={container!r})"
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
