"""Proof on load: the consumer's model against the guarded one, weight by weight."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["compare", "probe_ids"]


def probe_ids(model: Any, count: int = 8) -> torch.Tensor:
    """A few fixed token ids inside the vocabulary (``[1, count]``)."""
    vocab = int(getattr(model.config, "vocab_size", 0) or count + 1)
    return torch.arange(1, min(count, vocab - 1) + 1).unsqueeze(0)


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    """Bytes of ``tensor`` with -0.0 folded into +0.0 (a code carries no sign of zero)."""
    return (tensor.detach().cpu() + 0).contiguous().view(torch.uint8)


def compare(loaded: Any, guarded: Any, loader: str) -> dict[str, Any]:
    """``{"loader", "bit_equal", "max_abs_weight_diff", "max_abs_logit_diff", "mismatches"}``.

    Bit-equal means: the same tensor names, dtypes and shapes, the same bytes (-0.0 and +0.0
    count as equal), and the same logits on :func:`probe_ids` (equal weights under a config
    the consumer reads differently would still behave differently).
    """
    reference, got = guarded.state_dict(), loaded.state_dict()
    mismatches: list[str] = sorted(f"{name}: missing" for name in set(reference) - set(got))
    worst = 0.0
    for name, tensor in reference.items():
        other = got.get(name)
        if other is None:
            continue
        if other.shape != tensor.shape or other.dtype != tensor.dtype:
            mismatches.append(
                f"{name}: {other.dtype}{list(other.shape)} vs {tensor.dtype}{list(tensor.shape)}"
            )
            if other.shape != tensor.shape:
                worst = float("inf")
                continue
        a, b = other.detach().cpu(), tensor.detach().cpu()
        if a.dtype == b.dtype and torch.equal(_bits(a), _bits(b)):
            continue
        diff = float((a.double() - b.double()).abs().max()) if a.numel() else 0.0
        worst = max(worst, diff)
        if a.dtype == b.dtype:
            mismatches.append(f"{name}: max |diff| {diff:.3g}")
    logit_diff = None
    ids = probe_ids(guarded)
    with torch.no_grad():
        mine = guarded(ids.to(guarded.device)).logits.detach().cpu().double()
        theirs = loaded(ids.to(loaded.device)).logits.detach().cpu().double()
        if mine.shape == theirs.shape:
            logit_diff = float((mine - theirs).abs().max())
    if logit_diff != 0.0:  # same weights, other behaviour: the consumer's config differs
        shown = "shapes differ" if logit_diff is None else f"max |diff| {logit_diff:.3g}"
        mismatches.append(f"logits on {ids.shape[1]} probe tokens: {shown}")
    return {
        "loader": loader,
        "bit_equal": not mismatches,
        "max_abs_weight_diff": worst,
        "max_abs_logit_diff": logit_diff,
        "mismatches": mismatches[:20],
    }
