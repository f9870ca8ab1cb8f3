"""A reference round-to-nearest for guard tests: plain torch, independent of invarlock's
quantizer, so a guard is judged against an edit it did not help write."""

from __future__ import annotations

import torch
from torch import nn


def output_axis(module: nn.Module) -> int:
    """Linear weights are (out, in); transformers Conv1D weights are (in, out)."""
    return 0 if isinstance(module, nn.Linear) else 1


def rtn_(model: nn.Module, bits: int) -> None:
    """Symmetric per-output-channel round-to-nearest of the block weights, in place."""
    qmax = 2 ** (bits - 1) - 1
    blocks = model.transformer.h if hasattr(model, "transformer") else model.model.layers
    with torch.no_grad():
        for module in blocks.modules():
            if type(module).__name__ not in ("Linear", "Conv1D"):
                continue
            weight = module.weight
            absmax = weight.abs().amax(dim=1 - output_axis(module), keepdim=True)
            scale = absmax.clamp_min(1e-12) / qmax
            weight.copy_((weight / scale).round().clamp(-qmax, qmax) * scale)
