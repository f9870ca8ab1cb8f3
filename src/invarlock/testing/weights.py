"""Bit-exact comparison of model weights: what "restored" means in invarlock."""

from __future__ import annotations

from typing import Any


def weight_bits(model: Any) -> dict[str, bytes]:
    """Every tensor of ``model.state_dict()`` as raw bytes; equal dicts mean bit-exact equal
    models (NaN payloads and signed zeros included)."""
    import torch

    return {
        name: tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
        for name, tensor in model.state_dict().items()
    }


def changed_tensors(model: Any, reference: Any) -> list[str]:
    """Names of the tensors whose bytes differ between ``model`` and ``reference``."""
    mine, theirs = weight_bits(model), weight_bits(reference)
    return sorted(n for n in mine.keys() | theirs.keys() if mine.get(n) != theirs.get(n))
