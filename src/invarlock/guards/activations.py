"""Per-block output variance of a model on calibration windows, captured with forward hooks.

Each direct child of the block container (``transformer.h[i]``, ``model.layers[i]``) gets a
forward hook that records, for every window (row of a ``calib`` batch), the variance over
tokens of every channel of the block's output (the residual stream). The pass stops after
the last block: the final norm and the language-model head, a fifth of the cost of a
small model's forward pass, are never run.

This module imports torch; guard modules import it inside their methods.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from invarlock.evaluation.sequence import student_t_quantile


class _StopForward(Exception):
    """Raised by the last block's hook: nothing after it is needed."""


def calibration_windows(calib: Any, windows: int, tokens: int) -> list[torch.Tensor]:
    """The first ``windows`` rows of the ``calib`` batches, cut to their first ``tokens``."""
    rows: list[torch.Tensor] = []
    for batch in calib or []:
        if not isinstance(batch, torch.Tensor) or batch.ndim != 2:
            raise TypeError(
                f"calib must be a list of [batch, seq_len] input-id tensors, got {type(batch)}"
            )
        for row in batch:
            if len(rows) == windows:
                return rows
            rows.append(row[:tokens])
    return rows


def block_output_variance(model: Any, container: str, windows: list[torch.Tensor]) -> torch.Tensor:
    """``[blocks, windows, channels]`` float64 variance over tokens of each block's output."""
    blocks = list(model.get_submodule(container).children())
    found: list[list[torch.Tensor]] = [[] for _ in blocks]

    def hook(index: int) -> Any:
        def record(_module: Any, _inputs: Any, output: Any) -> None:
            hidden = output[0] if isinstance(output, (tuple, list)) else output
            found[index].append(hidden.detach().to(torch.float64).var(dim=-2, correction=0))
            if index == len(blocks) - 1:
                raise _StopForward

        return record

    handles = [block.register_forward_hook(hook(i)) for i, block in enumerate(blocks)]
    try:
        with torch.no_grad():
            for row in windows:
                with contextlib.suppress(_StopForward):
                    model(input_ids=row.unsqueeze(0))
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack([torch.cat(per_block) for per_block in found])


def paired_log_ratio(
    before: torch.Tensor, after: torch.Tensor, confidence: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per block and channel: mean over windows of log(var'/var) and its t-interval.

    ``before`` and ``after`` are ``[blocks, windows, channels]``; returns ``(mean, lower,
    upper)``, each ``[blocks, channels]``. Variances below 1e-6 of their block's mean are
    floored there, so silent channels cannot produce huge ratios from rounding.
    """
    floor = 1e-6 * before.mean(dim=(1, 2), keepdim=True)
    ratio = torch.log(after.clamp_min(floor) / before.clamp_min(floor))
    windows = ratio.shape[1]
    mean = ratio.mean(dim=1)
    if windows < 2:
        return mean, mean, mean
    quantile = student_t_quantile(0.5 + confidence / 2, windows - 1)
    half = quantile * ratio.std(dim=1) / windows**0.5
    return mean, mean - half, mean + half
