"""The integer form of an RTN-quantized weight: codes, scales and zero points.

:func:`quantize_recorded_` is the in-place edit that also remembers, per weight, the exact
scales (and zero points) it used, in a weak table keyed by the parameter and checked against
its version counter, so a later export can rebuild the integer codes of the edited weight
exactly (:func:`codes_of_edited`; the scales cannot be read back from the weights alone,
least of all in half precision). :func:`quantize_with_codes_` quantizes and captures the
codes in one go, for weights that were not edited yet. :func:`decode` turns codes back into
the float weight with the kernel's own arithmetic, so every round trip is exact.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

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
    "codes_of_edited",
    "codes_quantizing_if_needed",
    "decode",
    "quantize_recorded_",
    "quantize_with_codes_",
    "recorded",
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
class _Record:
    """What quantizing one parameter produced, valid while the parameter is untouched."""

    spec: QuantSpec
    out_axis: int
    scale: torch.Tensor
    zero_point: torch.Tensor | None
    version: int
    data_ptr: int


class _Registry:
    """Records by tensor identity, dropped when the tensor dies.

    (``weakref.WeakKeyDictionary`` cannot hold tensors: it compares keys with ``==``.)
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[torch.Tensor], _Record]] = {}

    def put(self, tensor: torch.Tensor, record: _Record) -> None:
        key, entries = id(tensor), self._entries

        def forget(dead: weakref.ref[torch.Tensor]) -> None:
            if key in entries and entries[key][0] is dead:
                del entries[key]

        entries[key] = (weakref.ref(tensor, forget), record)

    def get(self, tensor: torch.Tensor) -> _Record | None:
        entry = self._entries.get(id(tensor))
        return entry[1] if entry is not None and entry[0]() is tensor else None

    def __len__(self) -> int:
        return len(self._entries)


_RECORDS = _Registry()


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


def _remember(param: torch.Tensor, out_axis: int, spec: QuantSpec, parts: list) -> None:
    scale, zero = _tables(parts, param.shape[out_axis], out_axis)
    _RECORDS.put(param, _Record(spec, out_axis, scale, zero, param._version, param.data_ptr()))


def quantize_recorded_(
    param: torch.Tensor,
    out_axis: int,
    spec: QuantSpec,
    *,
    stats: bool = False,
    workspace: Workspace | None = None,
) -> WeightStats:
    """``quantize_`` on ``param`` (a parameter, edited in place) and remember its scales."""
    weight = param.detach()  # shares storage and version counter with the parameter
    if spec.grid is not None:
        from invarlock.edits._gguf_grid import quantize_grid_

        result, scale = quantize_grid_(weight, out_axis, spec, stats=stats)
        _RECORDS.put(param, _Record(spec, out_axis, scale, None, param._version, param.data_ptr()))
        return result
    result, parts = quantize_parts_(
        weight, out_axis, spec, stats, BLOCK_BYTES, workspace, None, keep_zero_points=True
    )
    _remember(param, out_axis, spec, parts)
    return result


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
        _RECORDS.put(param, _Record(spec, out_axis, scale, None, param._version, param.data_ptr()))
        return stats, Codes(codes, scale, None)
    stats, parts = quantize_parts_(weight, out_axis, spec, False, BLOCK_BYTES, workspace, codes)
    _remember(param, out_axis, spec, parts)
    scale, zero = _tables(parts, weight.shape[out_axis], out_axis)
    return stats, Codes(codes, scale, zero)


def recorded(param: torch.Tensor, out_axis: int, spec: QuantSpec) -> bool:
    """Whether ``param`` holds what quantizing it with ``spec`` in this process produced."""
    record = _RECORDS.get(param)
    return (
        record is not None
        and record.spec == spec
        and record.out_axis == out_axis
        and record.version == param._version
        and record.data_ptr == param.data_ptr()
    )


def codes_of_edited(param: torch.Tensor, out_axis: int, spec: QuantSpec) -> Codes:
    """The codes of a :func:`recorded` parameter, rebuilt from its scales and checked.

    ``d = round(w' / scale)`` is exact in float32. In bfloat16, with 8 significant bits,
    neighbouring codes above 128 collapse onto one stored value: ``round`` may then return a
    neighbour of the code the edit used, or step out of the code range at a tie. So ``d`` is
    clamped to the range and each element takes the first of ``d, d-1, d+1`` (in range) that
    decodes to exactly the stored value; the true code is always among them.
    """
    record = _RECORDS.get(param)
    if record is None or not recorded(param, out_axis, spec):
        raise ValueError("no record of quantizing this weight with this configuration")
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


def codes_quantizing_if_needed(
    param: torch.Tensor, out_axis: int, spec: QuantSpec, workspace: Workspace | None = None
) -> Codes:
    """The codes of ``param``: rebuilt when it is :func:`recorded`, otherwise by quantizing
    it in place now, exactly as the edit would."""
    if recorded(param, out_axis, spec):
        return codes_of_edited(param, out_axis, spec)
    return quantize_with_codes_(param, out_axis, spec, workspace=workspace)[1]


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
