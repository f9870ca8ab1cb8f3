"""Which weights quant_rtn writes: the default scope, include/exclude patterns, tied tensors.

Default scope: every ``nn.Linear`` and transformers ``Conv1D`` under the model's repeated block
container, found generically as the ``nn.ModuleList`` holding the most parameters
(``transformer.h`` in GPT-2, ``model.layers`` in LLaMA). Embeddings and ``lm_head`` are outside
it. ``include`` replaces the default scope with fnmatch patterns over module names;
``exclude`` removes modules from either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import torch
from torch import nn

from invarlock.core import structure
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
            f"edit.include: {type(model).__name__} has no repeated block container"
            " (nn.ModuleList); list the modules to quantize with include patterns"
        )
    return best


def _unmatched(patterns: tuple[str, ...], names: list[str]) -> str | None:
    for pattern in patterns:
        if not any(fnmatchcase(name, pattern) for name in names):
            return pattern
    return None


def select_targets(model: nn.Module, config: RTNConfig) -> Selection:
    """Resolve ``config``'s scope on ``model`` into quantization targets."""
    modules = dict(model.named_modules())
    names = list(modules)
    for key, patterns in (("include", config.include or ()), ("exclude", config.exclude)):
        pattern = _unmatched(patterns, names)
        if pattern is not None:
            raise EditConfigError(
                f"edit.{key}: pattern {pattern!r} matches no module of {type(model).__name__}"
            )
    if config.include is None:
        prefix = block_container(model) + "."
        candidates = [name for name in names if name.startswith(prefix)]
    else:
        candidates = [n for n in names if any(fnmatchcase(n, p) for p in config.include)]
    if config.scope != "all":
        candidates = [n for n in candidates if _in_scope(n, config.scope)]

    aliases = structure.parameter_aliases(model)
    selection, seen = Selection(), dict[tuple, str]()
    for name in candidates:
        module = modules[name]
        out_axis = structure.output_axis(module)
        if out_axis is not None:
            kind = "Linear" if out_axis == 0 else "Conv1D"
        else:
            weight = getattr(module, "weight", None)
            if (
                config.include is not None
                and isinstance(weight, torch.Tensor)
                and weight.dim() >= 2
            ):
                selection.skipped.append(
                    f"{name}: {type(module).__name__} is not quantized (only Linear and Conv1D)"
                )
            continue
        excluded_by = next((p for p in config.exclude if fnmatchcase(name, p)), None)
        if excluded_by is not None:
            selection.skipped.append(f"{name}: excluded by {excluded_by!r}")
            continue
        weight = module.weight
        if weight.is_meta:
            raise ValueError(f"{name}.weight is on the meta device: the model is not loaded")
        if not weight.is_floating_point():
            selection.skipped.append(f"{name}: weight dtype {weight.dtype} is not floating point")
            continue
        key = structure.storage_key(weight)
        if key in seen:  # a second module sharing an already selected weight
            selection.skipped.append(f"{name}: shares its weight with {seen[key]}, quantized once")
            continue
        seen[key] = name
        names_of = aliases.get(key, (f"{name}.weight",))
        selection.targets.append(
            Target(name, kind, out_axis, weight, f"{name}.weight", names_of[0], names_of)
        )
    if not selection.targets:
        key = "edit.include" if config.include is not None else "edit"
        reasons = "; ".join(selection.skipped) or "no Linear or Conv1D module in scope"
        raise EditConfigError(
            f"{key}: quant_rtn selects no weight of {type(model).__name__} ({reasons})"
        )
    return selection


#: Module-name parts that mark attention and feed-forward layers across model families.
_SCOPE_MARKERS = {
    "attn": ("attn", "attention"),
    "ffn": ("mlp", "ffn", "feed_forward", "feedforward"),
}


def _in_scope(module_name: str, scope: str) -> bool:
    """Whether a module lies inside an attention (``attn``) or feed-forward (``ffn``) block."""
    parts = module_name.lower().split(".")
    return any(marker in part for part in parts for marker in _SCOPE_MARKERS[scope])
