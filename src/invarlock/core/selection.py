"""Which weights a selection reaches: one pattern language and one tie rule, for the edit
(``edit.include``/``edit.exclude``) and the guards (``guards.NAME.include``/``exclude``).

**Candidates.** Every module holding a weight of two or more dimensions, in
``model.named_modules()`` order: ``nn.Linear`` (output axis 0), transformers ``Conv1D``
(output axis 1), ``nn.Embedding`` (rows are its channels), and any other (its class name
as ``kind``; the edit reports it as not quantizable, the guards skip it).

**Pattern rule.** A pattern is an fnmatch pattern (case-sensitive; ``*`` also matches
dots) that reaches a module when it matches the module's name
(``model.layers.0.mlp.up_proj``) *or* its weight's parameter name
(``model.layers.0.mlp.up_proj.weight``). So ``*down_proj`` and ``*.down_proj.*`` reach the
same weights, as do ``lm_head`` and ``lm_head.weight``. A pattern that reaches no module
of the model is reported (an error for the edit, a problem or note for a guard).

**Scope.** Without ``include``, the scope is every Linear/Conv1D inside the block
container (the ``nn.ModuleList`` holding the most parameters); ``include`` replaces it with
the modules it reaches; ``exclude`` then removes modules. Patterns of both lists use the
rule above.

**Tie rule.** Tied parameters are one tensor: weights with the same
:func:`invarlock.core.structure.storage_key` are selected once, by the first module
holding them, Linear/Conv1D before Embedding, then in module order; every parameter name
of the tensor is in its ``aliases`` (:func:`invarlock.core.structure.parameter_aliases`).

torch is imported inside the functions: listings import the edit and guard modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from invarlock.core.options import OptionError, coerce
from invarlock.core.structure import block_container, output_axis, storage_key

__all__ = [
    "LINEAR_KINDS",
    "Candidate",
    "Selection",
    "all_names",
    "candidates",
    "check_patterns",
    "first_match",
    "select",
    "unique",
    "unmatched",
]

#: The kinds the edit quantizes (and the guards' default scope).
LINEAR_KINDS = ("Linear", "Conv1D")


@dataclass(frozen=True)
class Candidate:
    """A module holding a 2-D (or larger) weight."""

    module: str  # module name, e.g. "transformer.h.0.attn.c_attn"
    kind: str  # "Linear", "Conv1D", "Embedding" or another module class name
    out_axis: int | None  # 0 for Linear and Embedding rows, 1 for Conv1D, None otherwise
    weight: Any = field(repr=False, compare=False)

    @property
    def param(self) -> str:
        """The weight's parameter name under this module."""
        return f"{self.module}.weight" if self.module else "weight"


@dataclass
class Selection:
    """What ``include``/``exclude`` reach in a model (see the module docs)."""

    container: str | None
    #: Modules in scope (the default scope or the ``include`` hits), in module order.
    reached: list[Candidate] = field(default_factory=list)
    #: Reached modules removed by an ``exclude`` pattern, with that pattern.
    excluded: list[tuple[Candidate, str]] = field(default_factory=list)

    @property
    def kept(self) -> list[Candidate]:
        """Reached and not excluded, in module order."""
        dropped = {id(candidate) for candidate, _ in self.excluded}
        return [c for c in self.reached if id(c) not in dropped]


def check_patterns(key_path: str, value: Any) -> tuple[str, ...]:
    """``None``, one pattern or a list of them as a tuple of non-empty strings."""
    if value is None:
        return ()
    patterns = coerce(value, tuple[str, ...], key_path)
    for index, pattern in enumerate(patterns):
        if not pattern.strip():
            raise OptionError("must be a non-empty pattern", key_path=f"{key_path}[{index}]")
    return patterns


def candidates(model: Any) -> list[Candidate]:
    """Every module holding a weight of two or more dimensions, in module order."""
    from torch import nn

    found = []
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if weight is None or getattr(weight, "ndim", 0) < 2:
            continue
        axis = output_axis(module)
        if axis is not None:
            kind = "Linear" if axis == 0 else "Conv1D"
        elif isinstance(module, nn.Embedding):
            kind, axis = "Embedding", 0
        else:
            kind = type(module).__name__
        found.append(Candidate(name, kind, axis, weight))
    return found


def first_match(candidate: Candidate, patterns: Iterable[str]) -> str | None:
    """The first pattern that reaches ``candidate`` (its module or parameter name)."""
    return next(
        (
            pattern
            for pattern in patterns
            if fnmatchcase(candidate.module, pattern) or fnmatchcase(candidate.param, pattern)
        ),
        None,
    )


def unmatched(patterns: Sequence[str], names: Iterable[str]) -> list[str]:
    """The patterns that match none of ``names`` (module and parameter names)."""
    listed = list(names)
    return [p for p in patterns if not any(fnmatchcase(name, p) for name in listed)]


def select(model: Any, include: Sequence[str] | None, exclude: Sequence[str]) -> Selection:
    """The modules ``include`` (``None``: the default scope) and ``exclude`` reach."""
    container = block_container(model)
    found = candidates(model)
    selection = Selection(container=container)
    if include is not None:
        selection.reached = [c for c in found if first_match(c, include) is not None]
    else:
        prefix = f"{container}." if container else ""
        selection.reached = [
            c for c in found if c.kind in LINEAR_KINDS and c.module.startswith(prefix)
        ]
    for candidate in selection.reached:
        pattern = first_match(candidate, exclude)
        if pattern is not None:
            selection.excluded.append((candidate, pattern))
    return selection


def unique(chosen: Sequence[Candidate]) -> tuple[list[Candidate], list[tuple[Candidate, str]]]:
    """The tie rule: each tensor once (Linear/Conv1D first, then module order), and the
    candidates dropped for sharing a tensor, with the module that holds it."""
    ordered = sorted(chosen, key=lambda c: c.kind not in LINEAR_KINDS)
    holder: dict[Any, str] = {}
    kept, shared = [], []
    for candidate in ordered:
        key = storage_key(candidate.weight)
        if key in holder:
            shared.append((candidate, holder[key]))
            continue
        holder[key] = candidate.module
        kept.append(candidate)
    return kept, shared


def all_names(model: Any) -> list[str]:
    """Every module and parameter name of ``model``: what a pattern can match."""
    names = [name for name, _ in model.named_modules()]
    names += [name for name, _ in model.named_parameters(remove_duplicate=False)]
    return names
