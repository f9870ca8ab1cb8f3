"""Which weights quant_rtn writes: the selection of :mod:`invarlock.core.selection`
(default scope, pattern rule and tie rule shared with the guards), narrowed to Linear and
Conv1D weights of a floating dtype, and to ``scope: attn|ffn``.

Default scope: every ``nn.Linear`` and transformers ``Conv1D`` under the model's repeated block
container (``transformer.h`` in GPT-2, ``model.layers`` in LLaMA); embeddings and ``lm_head``
are outside it. ``include`` replaces the default scope; ``exclude`` removes modules from
either. A pattern matches a module name or its weight's parameter name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from invarlock.core import selection, structure
from invarlock.core.edit import EditConfigError
from invarlock.edits.config import RTNConfig

__all__ = ["Selection", "Target", "block_container", "select_targets"]


@dataclass(frozen=True)
class Target:
    """One weight tensor to quantize, once, whatever the number of names it has."""

    module: str  # module name, e.g. "transformer.h.0.attn.c_attn"
    module_type: str  # "Linear" or "Conv1D"
    out_axis: int  # 0 for Linear (out, in), 1 for Conv1D (in, out)
    weight: nn.Parameter
    param: str  # f"{module}.weight"
    canonical: str  # the name model.named_parameters() yields for this tensor
    aliases: tuple[str, ...]  # every parameter name of this tensor, in model order


@dataclass
class Selection:
    """The targets, and what the patterns reached but the edit leaves alone (with why)."""

    targets: list[Target] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def tied(self) -> list[list[str]]:
        """Groups of parameter names sharing one quantized tensor."""
        return [list(t.aliases) for t in self.targets if len(t.aliases) > 1]


def block_container(model: nn.Module) -> str:
    """Name of the transformer block container; an error when the model has none."""
    best = structure.block_container(model)
    if best is None:
        raise EditConfigError(
            f"{type(model).__name__} has no repeated block container"
            " (nn.ModuleList); list the modules to quantize with include patterns",
            key_path="edit.include",
        )
    return best


def select_targets(model: nn.Module, config: RTNConfig) -> Selection:
    """Resolve ``config``'s scope on ``model`` into quantization targets."""
    names = selection.all_names(model)
    for key, patterns in (("include", config.include or ()), ("exclude", config.exclude)):
        for pattern in selection.unmatched(patterns, names)[:1]:
            raise EditConfigError(
                f"pattern {pattern!r} matches no module of {type(model).__name__}",
                key_path=f"edit.{key}",
            )
    if config.include is None:
        block_container(model)  # the default scope needs one
    found = selection.select(model, config.include, config.exclude)
    excluded_by = {candidate.module: pattern for candidate, pattern in found.excluded}
    checked = [
        (candidate, _skip_reason(candidate, excluded_by.get(candidate.module)))
        for candidate in found.reached
        if config.scope == "all" or _in_scope(candidate.module, config.scope)
    ]
    kept, shared = selection.unique([c for c, reason in checked if reason is None])
    holders = {c.module: holder for c, holder in shared}
    result = Selection()
    for candidate, reason in checked:
        if candidate.module in holders:
            reason = f"shares its weight with {holders[candidate.module]}, quantized once"
        if reason is not None:
            result.skipped.append(f"{candidate.module}: {reason}")
    aliases = structure.parameter_aliases(model)
    for candidate in kept:
        assert candidate.out_axis is not None
        names_of = aliases.get(structure.storage_key(candidate.weight), (candidate.param,))
        result.targets.append(
            Target(
                candidate.module,
                candidate.kind,
                candidate.out_axis,
                candidate.weight,
                candidate.param,
                names_of[0],
                names_of,
            )
        )
    if not result.targets:
        key = "edit.include" if config.include is not None else "edit"
        reasons = "; ".join(result.skipped) or "no Linear or Conv1D module in scope"
        raise EditConfigError(
            f"quant_rtn selects no weight of {type(model).__name__} ({reasons})", key_path=key
        )
    return result


def _skip_reason(candidate: selection.Candidate, excluded_by: str | None) -> str | None:
    """Why a reached module is not quantized, or ``None``."""
    if candidate.kind not in selection.LINEAR_KINDS:
        return f"{candidate.kind} is not quantized (only Linear and Conv1D)"
    if excluded_by is not None:
        return f"excluded by {excluded_by!r}"
    if candidate.weight.is_meta:
        raise ValueError(f"{candidate.param} is on the meta device: the model is not loaded")
    if not candidate.weight.is_floating_point():
        return f"weight dtype {candidate.weight.dtype} is not floating point"
    return None


#: Module-name parts that mark attention and feed-forward layers across model families.
_SCOPE_MARKERS = {
    "attn": ("attn", "attention"),
    "ffn": ("mlp", "ffn", "feed_forward", "feedforward"),
}


def _in_scope(module_name: str, scope: str) -> bool:
    """Whether a module lies inside an attention (``attn``) or feed-forward (``ffn``) block."""
    parts = module_name.lower().split(".")
    return any(marker in part for part in parts for marker in _SCOPE_MARKERS[scope])
