"""RTN on llama.cpp's own block grids (``grid: gguf_q8_0 | gguf_q4_0``), bit for bit.

A GGUF ``Q8_0``/``Q4_0`` block is 32 consecutive input elements of one row with one fp16
scale. A plain group-32 RTN is *not* that grid: gguf computes the codes from the unrounded
float32 block scale times its reciprocal and rounds differently, and rounds the scale to fp16
only for dequantization. This module mirrors ``gguf.quants`` operation for operation (in
float32, as numpy runs it) so that the edited weight is exactly what llama.cpp dequantizes:

* ``Q8_0``: ``d = max|x| / 127``, ``q = round_half_away(x * (1/d))``, ``w' = q * fp16(d)``;
* ``Q4_0``: ``m`` = the signed element of largest magnitude (first on ties), ``d = m / -8``,
  ``q = clamp(trunc(x * (1/d) + 8.5), 0, 15) - 8``, ``w' = q * fp16(d)``;
* an all-zero block has ``d = 0``, reciprocal 0, codes 0.

The tests compare this against ``gguf.quants.quantize``/``dequantize`` directly.
"""

from __future__ import annotations

import math

import torch

from invarlock.edits.config import GGUF_BLOCK, QuantSpec
from invarlock.edits.kernels import WeightStats

__all__ = ["quantize_grid_"]

#: Rows quantized per step: bounds the float32 scratch to a few MiB for any width.
_ROW_ELEMENTS = 1 << 20


def quantize_grid_(
    weight: torch.Tensor,
    out_axis: int,
    spec: QuantSpec,
    *,
    stats: bool = False,
    codes: torch.Tensor | None = None,
) -> tuple[WeightStats, torch.Tensor]:
    """Put the 2-D ``weight`` on ``spec.grid`` in place; return stats and the fp16-exact scales.

    The scales come back as float32 ``(out, in / 32)`` (each an fp16 value). ``codes`` (int8,
    the weight's shape and layout) receives ``q`` when given. Raises ``ValueError`` when the
    input width is not a multiple of 32 or the weight holds NaN or infinity.
    """
    if spec.grid is None:
        raise ValueError("quantize_grid_ needs a spec with a gguf grid")
    matrix = weight if out_axis == 0 else weight.t()
    code_matrix = None if codes is None else (codes if out_axis == 0 else codes.t())
    n_out, n_in = matrix.shape
    if n_in % GGUF_BLOCK:
        raise ValueError(f"{spec.grid} needs an input width divisible by {GGUF_BLOCK}, got {n_in}")
    n_blocks = n_in // GGUF_BLOCK
    scales = torch.empty(n_out, n_blocks, dtype=torch.float32, device=weight.device)
    ref_sq = err_sq = worst = 0.0
    step = max(1, _ROW_ELEMENTS // max(1, n_in))
    with torch.no_grad():
        for start in range(0, n_out, step):
            rows = matrix[start : start + step]
            blocks = rows.to(torch.float32).reshape(-1, n_blocks, GGUF_BLOCK)
            if not bool(torch.isfinite(blocks).all()):
                raise ValueError("the weight contains NaN or infinite values")
            q, scale = _codes_and_scale(blocks, spec.grid)
            restored = (q * scale).reshape(rows.shape).to(weight.dtype)
            if stats:
                diff = blocks.reshape(rows.shape) - restored.to(torch.float32)
                ref_sq += float(torch.linalg.vector_norm(blocks.double()) ** 2)
                err_sq += float(torch.linalg.vector_norm(diff.double()) ** 2)
                worst = max(worst, float(diff.abs().max()) if diff.numel() else 0.0)
            rows.copy_(restored)
            scales[start : start + step] = scale.squeeze(-1)
            if code_matrix is not None:
                code_matrix[start : start + step] = q.reshape(rows.shape).to(torch.int8)
    low = float(scales.min()) if scales.numel() else 0.0
    high = float(scales.max()) if scales.numel() else 0.0
    if not stats:
        return WeightStats(low, high), scales
    rel = math.sqrt(err_sq / ref_sq) if ref_sq > 0 else (0.0 if err_sq == 0 else math.inf)
    return WeightStats(low, high, rel, worst), scales


def _codes_and_scale(blocks: torch.Tensor, grid: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(q, fp16(d) as float32)`` of float32 ``blocks`` shaped ``(..., 32)``."""
    if grid == "gguf_q8_0":
        d = blocks.abs().amax(-1, keepdim=True) / 127
    else:
        index = blocks.abs().argmax(-1, keepdim=True)
        d = torch.gather(blocks, -1, index) / -8
    inverse = torch.where(d == 0, torch.zeros_like(d), 1 / d)
    scaled = blocks * inverse
    if grid == "gguf_q8_0":
        magnitude = scaled.abs()
        floor = magnitude.floor()
        q = torch.sign(scaled) * (floor + (2 * (magnitude - floor)).floor())  # half away from 0
    else:
        q = torch.trunc(scaled + 8.5).clamp_(0, 15) - 8
    return q, d.to(torch.float16).to(torch.float32)
