"""The integer form of an RTN-quantized weight: codes, scales and zero points.

:func:`quantize_recorded_` is the in-place edit that also returns a :class:`ScaleRecord` of
the exact scales (and zero points) it used; the edit keeps the records in its result
(``EditResult.codes``) so that an export can rebuild the integer codes of the edited weight
exactly (:func:`codes_of_edited`; the scales cannot be read back from the weights alone, least
of all in half precision). A record holds its weight only weakly and is valid while the
weight is untouched. :func:`quantize_with_codes_` quantizes and captures the codes in one go,
for weights that were not edited yet. :func:`decode` turns codes back into the float weight
with the kernel's own arithmetic, so every round trip is exact.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch

from invarlock.edits.config import QuantSpec
from invarlock.edits.kernels import (
    BLOCK_BYTES,
    WeightStats,
    Workspace,
    compute_dtype,
    group_along,
    quantize_parts_,
)

__all__ = [
    "Codes",
    "ScaleRecord",
    "codes_of",
    "codes_of_edited",
    "decode",
    "quantize_recorded_",
    "quantize_with_codes_",
]


@dataclass
class Codes:
    """The integer form of a quantized weight: ``w' = cast((codes - zero_point) * scale)``.

    ``codes`` has the weight's shape and layout (``Conv1D`` stays ``(in, out)``): int8 when
    symmetric, uint8 when asymmetric. ``scale`` (compute dtype) and ``zero_point`` (uint8,
    ``None`` when symmetric) are ``(out, n_groups)``: one column per group along the input
    axis, the last one possibly partial.
    """

    codes: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor | None


@dataclass(frozen=True)
class ScaleRecord:
    """The scales (and zero points) quantizing one weight produced, valid while the weight
    holds what that quantization wrote (same tensor, version counter and storage)."""

    spec: QuantSpec
    out_axis: int
    scale: torch.Tensor
    zero_point: torch.Tensor | None
    weight: weakref.ref[torch.Tensor] = field(repr=False, compare=False)
    version: int
    data_ptr: int

    @classmethod
    def of(
        cls,
        param: torch.Tensor,
        out_axis: int,
        spec: QuantSpec,
        scale: torch.Tensor,
        zero: torch.Tensor | None,
    ) -> ScaleRecord:
        """The record of ``param`` as it is now, quantized with these tables."""
        return cls(
            spec, out_axis, scale, zero, weakref.ref(param), param._version, param.data_ptr()
        )

    def holds(self, param: torch.Tensor, out_axis: int, spec: QuantSpec) -> bool:
        """Whether ``param`` still holds what quantizing it with ``spec`` wrote."""
        return (
            self.weight() is param
            and self.spec == spec
            and self.out_axis == out_axis
            and self.version == param._version
            and self.data_ptr == param.data_ptr()
        )


def _tables(
    parts: list[tuple[torch.Tensor, torch.Tensor | None]], n_out: int, out_axis: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The kernel's per-part scales and ``-zero_points`` as ``(out, n_groups)`` tables."""

    def columns(table: torch.Tensor) -> torch.Tensor:
        return table.reshape(n_out, -1) if out_axis == 0 else table.reshape(-1, n_out).t()

    scale = torch.cat([columns(scale) for scale, _ in parts], dim=1).contiguous()
    lows = [columns(low) for _, low in parts if low is not None]
    zero = torch.cat(lows, dim=1).neg().to(torch.uint8).contiguous() if lows else None
    return scale, zero


def quantize_recorded_(
    param: torch.Tensor,
    out_axis: int,
    spec: QuantSpec,
    *,
    stats: bool = False,
    workspace: Workspace | None = None,
) -> tuple[WeightStats, ScaleRecord]:
    """``quantize_`` on ``param`` (a parameter, edited in place), and the record of its scales."""
    weight = param.detach()  # shares storage and version counter with the parameter
    if spec.grid is not None:
        from invarlock.edits._gguf_grid import quantize_grid_

        result, scale = quantize_grid_(weight, out_axis, spec, stats=stats)
        return result, ScaleRecord.of(param, out_axis, spec, scale, None)
    result, parts = quantize_parts_(
        weight, out_axis, spec, stats, BLOCK_BYTES, workspace, None, keep_zero_points=True
    )
    scale, zero = _tables(parts, param.shape[out_axis], out_axis)
    return result, ScaleRecord.of(param, out_axis, spec, scale, zero)


def quantize_with_codes_(
    param: torch.Tensor, out_axis: int, spec: QuantSpec, *, workspace: Workspace | None = None
) -> tuple[WeightStats, Codes]:
    """Quantize ``param`` in place exactly as the edit does, and return its integer codes."""
    weight = param.detach()
    codes = torch.empty(
        weight.shape,
        dtype=torch.int8 if spec.symmetric else torch.uint8,
        device=weight.device,
    )
    if spec.grid is not None:
        from invarlock.edits._gguf_grid import quantize_grid_

        stats, scale = quantize_grid_(weight, out_axis, spec, codes=codes)
        return stats, Codes(codes, scale, None)
    stats, parts = quantize_parts_(weight, out_axis, spec, False, BLOCK_BYTES, workspace, codes)
    scale, zero = _tables(parts, weight.shape[out_axis], out_axis)
    return stats, Codes(codes, scale, zero)


def codes_of_edited(param: torch.Tensor, record: ScaleRecord) -> Codes:
    """The codes of ``param``, quantized as ``record`` says, rebuilt from its scales and checked.

    ``d = round(w' / scale)`` is exact in float32. In bfloat16, with 8 significant bits,
    neighbouring codes above 128 collapse onto one stored value: ``round`` may then return a
    neighbour of the code the edit used, or step out of the code range at a tie. So ``d`` is
    clamped to the range and each element takes the first of ``d, d-1, d+1`` (in range) that
    decodes to exactly the stored value; the true code is always among them.
    """
    spec, out_axis = record.spec, record.out_axis
    if not record.holds(param, out_axis, spec):
        raise ValueError("the weight no longer holds what the recorded quantization wrote")
    weight = param.detach()
    cdtype = compute_dtype(weight.dtype)
    stored = weight if out_axis == 0 else weight.t()
    scale = _expand(record.scale.to(cdtype), stored.shape, spec)
    if record.zero_point is None:
        offset = torch.zeros_like(scale)
        low, high = torch.full_like(scale, spec.qmin), torch.full_like(scale, spec.qmax)
    else:
        offset = _expand(record.zero_point.to(cdtype), stored.shape, spec)
        low, high = -offset, spec.qmax - offset
    divisor = torch.where(scale == 0, torch.ones_like(scale), scale)  # gguf: all-zero blocks
    base = torch.round(stored.to(cdtype) / divisor)
    ints = torch.clamp(base, low, high)
    pending = (ints * scale).to(weight.dtype) != stored
    for shift in (-1.0, 1.0):
        if not bool(pending.any()):
            break
        candidate = torch.clamp(base + shift, low, high)
        fits = pending & ((candidate * scale).to(weight.dtype) == stored)
        ints = torch.where(fits, candidate, ints)
        pending &= ~fits
    if bool(pending.any()):
        raise ValueError("the weight no longer matches the scales recorded when it was quantized")
    codes = (ints + offset).to(torch.int8 if spec.symmetric else torch.uint8)
    return Codes(
        (codes if out_axis == 0 else codes.t()).contiguous(), record.scale, record.zero_point
    )


def codes_of(
    param: torch.Tensor,
    out_axis: int,
    spec: QuantSpec,
    record: ScaleRecord | None,
    workspace: Workspace | None = None,
) -> tuple[Codes, ScaleRecord]:
    """The codes of ``param`` and their record: rebuilt when ``record`` still holds, otherwise
    by quantizing ``param`` in place now, exactly as the edit would."""
    if record is not None and record.holds(param, out_axis, spec):
        return codes_of_edited(param, record), record
    codes = quantize_with_codes_(param, out_axis, spec, workspace=workspace)[1]
    return codes, ScaleRecord.of(param, out_axis, spec, codes.scale, codes.zero_point)


def _expand(table: torch.Tensor, shape: torch.Size, spec: QuantSpec) -> torch.Tensor:
    """An ``(out, n_groups)`` table repeated over each group's input columns."""
    n_in = shape[1]
    group = group_along(spec, n_in) or n_in
    widths = torch.full((table.shape[1],), group)
    widths[-1] = n_in - group * (table.shape[1] - 1)
    return table.repeat_interleave(widths, dim=1)


def decode(codes: Codes, out_axis: int, spec: QuantSpec, dtype: torch.dtype) -> torch.Tensor:
    """The float weight ``cast((codes - zero_point) * scale)``, computed as the kernel does."""
    cdtype = compute_dtype(dtype)
    matrix = codes.codes if out_axis == 0 else codes.codes.t()
    n_out, n_in = matrix.shape
    group = group_along(spec, n_in) or n_in
    n_groups, rem = divmod(n_in, group)
    expected = (n_out, n_groups + (1 if rem else 0))
    for label, table in (("scale", codes.scale), ("zero_point", codes.zero_point)):
        if table is not None and tuple(table.shape) != expected:
            raise ValueError(
                f"{label} has shape {tuple(table.shape)}, expected {expected}"
                f" for codes of shape {tuple(codes.codes.shape)}"
            )
    values = matrix.to(cdtype)
    if codes.zero_point is not None:
        values = values - _expand(codes.zero_point.to(cdtype), matrix.shape, spec)
    result = (values * _expand(codes.scale.to(cdtype), matrix.shape, spec)).to(dtype)
    return (result if out_axis == 0 else result.t()).contiguous()
