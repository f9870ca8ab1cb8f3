"""Bit-exact comparison of model weights: what "restored" means in invarlock."""

from __future__ import annotations

import os
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


def load_model(directory: str | os.PathLike[str], device: str = "cpu") -> Any:
    """The model saved in ``directory``, loaded as ``invarlock run`` loads it (the
    ``hf_causal`` adapter): a fresh reference for what a run must leave bit-exactly."""
    from invarlock.adapters.hf_causal import HF_Causal_Adapter

    return HF_Causal_Adapter().load_model(os.fspath(directory), device=device)
