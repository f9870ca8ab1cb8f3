"""In-place round-to-nearest (RTN) quantize-dequantize of one weight matrix.

The math, per output channel or per group of ``group_size`` input elements:

* symmetric: ``qmax = 2**(bits-1) - 1``, ``scale = absmax / qmax``,
  ``q = round(w / scale)`` in ``[-qmax, qmax]`` (the code ``-2**(bits-1)`` is never used, so
  the grid is symmetric around an exact zero), ``w' = q * scale``;
* asymmetric: ``qmax = 2**bits - 1``, the range ``[min, max]`` is widened to contain 0 (as
  PyTorch's observers do, so zero stays exact and a same-sign channel is never clipped),
  ``scale = (max - min) / qmax``, ``zp = round(-min / scale)`` in ``[0, qmax]``,
  ``q = clamp(round(w / scale) + zp, 0, qmax)``, ``w' = (q - zp) * scale``;
* ``clamp_max_ratio`` shrinks the range to ``ratio * absmax`` (asymmetric: ``ratio * [min, max]``)
  and ``clamp_percentile`` to the linear-interpolated percentile ``t`` of ``|w|``
  (asymmetric: ``[max(min, -t), min(max, t)]``); values beyond it are clipped;
* ``round`` is round-half-to-even; every scale gets ``2**-126`` added (a no-op unless the
  channel's range is below about ``1e-36``), so an all-zero channel stays exactly zero
  instead of turning into NaN.

Speed: the weight is processed in row blocks of about :data:`BLOCK_BYTES`, so only the first
operation on a block reads main memory and the rest hit the L2 cache. Each block costs two
reductions (``amax``, ``amin``) and three element-wise passes (``mul``, ``round``, ``mul``); the
clamp is skipped where it provably cannot change anything (symmetric, no clipping:
``|w / scale| <= qmax * (1 + 3 eps)`` rounds to at most ``qmax``). Per-channel quantization of a
GPT-2 ``Conv1D`` weight, stored ``(in, out)``, needs every row before any column's scale is known,
so it reads the weight twice (one reduction sweep, one quantization sweep). Half-precision
weights are converted block by block to float32 and back. ``stats=True`` adds six cached passes
per block for the exact error statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from invarlock.edits.config import QuantSpec

__all__ = [
    "BLOCK_BYTES",
    "WeightStats",
    "Workspace",
    "compute_dtype",
    "group_along",
    "quantize_",
    "quantize_parts_",
]

#: Bytes of float32 work per block: small enough for L2 (with the stats scratch), large enough
#: that per-operation dispatch overhead stays small. Measured best on the development machine.
BLOCK_BYTES = 512 * 1024

_HALF_TYPES = (torch.float16, torch.bfloat16)


@dataclass
class WeightStats:
    """What quantizing one weight did; errors are ``None`` when stats were not requested."""

    scale_min: float
    scale_max: float
    rel_error: float | None = None
    max_error: float | None = None


class Workspace:
    """Scratch buffers reused across blocks and weights, so the block loop allocates nothing."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, torch.dtype, torch.device], torch.Tensor] = {}
        self._constants: dict[tuple[float, torch.dtype, torch.device], torch.Tensor] = {}

    def take(
        self, key: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        """A contiguous tensor of ``shape`` backed by the buffer ``key`` (contents undefined)."""
        numel = math.prod(shape)
        buffer = self._buffers.get((key, dtype, device))
        if buffer is None or buffer.numel() < numel:
            buffer = torch.empty(numel, dtype=dtype, device=device)
            self._buffers[(key, dtype, device)] = buffer
        return buffer[:numel].view(shape)

    def constant(self, value: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """A cached 0-d tensor: tensor operands dispatch faster than Python scalars."""
        key = (value, dtype, device)
        tensor = self._constants.get(key)
        if tensor is None:
            tensor = self._constants[key] = torch.tensor(value, dtype=dtype, device=device)
        return tensor


class _Accumulator:
    """Per-block partial statistics, combined once per weight."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.ref: list[torch.Tensor] = []
        self.err: list[torch.Tensor] = []
        self.hi: list[torch.Tensor] = []
        self.lo: list[torch.Tensor] = []

    def finish(self) -> tuple[float | None, float | None]:
        if not self.enabled:
            return None, None
        if not self.ref:
            return 0.0, 0.0
        ref = float(torch.linalg.vector_norm(torch.stack(self.ref).double()))
        err = float(torch.linalg.vector_norm(torch.stack(self.err).double()))
        worst = max(float(torch.stack(self.hi).max()), -float(torch.stack(self.lo).min()))
        return (err / ref if ref > 0 else (0.0 if err == 0 else math.inf)), worst


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the arithmetic runs in for weights of ``dtype``."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def quantize_(
    weight: torch.Tensor,
    out_axis: int,
    spec: QuantSpec,
    *,
    stats: bool = False,
    block_bytes: int = BLOCK_BYTES,
    workspace: Workspace | None = None,
) -> WeightStats:
    """Quantize-dequantize the 2-D floating ``weight`` in place; return its statistics.

    ``out_axis`` is the output-channel axis: 0 for ``nn.Linear`` (``(out, in)``), 1 for GPT-2's
    ``Conv1D`` (``(in, out)``). Groups run along the other (input) axis; a last partial group
    is quantized on its own. Raises ``ValueError`` when the weight holds NaN or infinity (the
    weight is then partly overwritten: restore it from a snapshot).
    """
    return quantize_parts_(weight, out_axis, spec, stats, block_bytes, workspace, None)[0]


def quantize_parts_(
    weight: torch.Tensor,
    out_axis: int,
    spec: QuantSpec,
    stats: bool,
    block_bytes: int,
    workspace: Workspace | None,
    codes: torch.Tensor | None,
    keep_zero_points: bool = False,
) -> tuple[WeightStats, list[tuple[torch.Tensor, torch.Tensor | None]]]:
    """Run the blocks; return the statistics and each part's ``(scales, -zero_points)``.

    ``codes`` (int8/uint8, the weight's shape) receives the integer codes when given;
    ``-zero_points`` are kept (asymmetric) when codes are captured or ``keep_zero_points``.
    """
    if weight.dim() != 2:
        raise ValueError(f"expected a 2-D weight, got shape {tuple(weight.shape)}")
    if not weight.is_floating_point():
        raise ValueError(f"expected a floating-point weight, got {weight.dtype}")
    if out_axis not in (0, 1):
        raise ValueError(f"out_axis must be 0 or 1, got {out_axis}")
    job = _Job(
        spec,
        stats,
        block_bytes,
        workspace or Workspace(),
        weight,
        codes is not None,
        keep_zero_points or codes is not None,
    )
    if weight.numel() == 0:
        return WeightStats(0.0, 0.0, *job.acc.finish()), []
    with torch.no_grad():
        if out_axis == 1 and group_along(spec, weight.shape[0]) is None:
            parts = [job.run_two_sweeps(weight, codes)]
        else:
            pieces = segments(weight, out_axis, spec)
            code_pieces = segments(codes, out_axis, spec) if codes is not None else None
            parts = [
                job.run(*piece, None if code_pieces is None else code_pieces[i][0])
                for i, piece in enumerate(pieces)
            ]
    low = min(float(scale.min()) for scale, _ in parts)
    high = max(float(scale.max()) for scale, _ in parts)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("the weight contains NaN or infinite values")
    return WeightStats(low, high, *job.acc.finish()), parts


def group_along(spec: QuantSpec, in_features: int) -> int | None:
    """The group length along the input axis, or ``None`` for one group per channel."""
    size = spec.group_size
    return None if size is None or size >= in_features else size


def segments(
    weight: torch.Tensor, out_axis: int, spec: QuantSpec
) -> list[tuple[torch.Tensor, int, int]]:
    """Split ``weight`` into ``(view, reduce_dim, row_elements)`` parts quantized alike.

    Each view has one scale per slice along ``reduce_dim``; ``row_elements`` counts the
    elements of one step along dim 0, the dimension blocks are cut along.
    """
    if out_axis == 0:  # nn.Linear (out, in): a row is a channel, groups run along dim 1
        n_in = weight.shape[1]
        group = group_along(spec, n_in)
        if group is None:
            return [(weight, 1, n_in)]
        n_groups, rem = divmod(n_in, group)
        full = n_groups * group
        parts = [(weight[:, :full].unflatten(1, (n_groups, group)), 2, n_in)]
        if rem:
            parts.append((weight[:, full:], 1, n_in))
        return parts
    n_in, n_out = weight.shape  # Conv1D (in, out): a group is `group` consecutive rows
    group = group_along(spec, n_in)
    assert group is not None, "per-channel Conv1D weights take the two-sweep path"
    n_groups, rem = divmod(n_in, group)
    full = n_groups * group
    parts = [(weight[:full].unflatten(0, (n_groups, group)), 1, group * n_out)]
    if rem:
        parts.append((weight[full:].unsqueeze(0), 1, rem * n_out))  # one block: dim 0 is 1
    return parts


class _Job:
    """One weight's quantization: the spec, the scratch space and the running statistics."""

    def __init__(
        self,
        spec: QuantSpec,
        stats: bool,
        block_bytes: int,
        workspace: Workspace,
        weight: torch.Tensor,
        capture: bool,
        keep_zero_points: bool,
    ) -> None:
        self.spec = spec
        self.symmetric = spec.symmetric
        self.clips = spec.clips
        self.keep_zero_points = keep_zero_points
        self.qmax = float(spec.qmax)
        self.ws = workspace
        self.acc = _Accumulator(stats)
        self.half = weight.dtype in _HALF_TYPES
        self.cdtype = compute_dtype(weight.dtype)
        self.device = weight.device
        self.tiny = workspace.constant(torch.finfo(self.cdtype).tiny, self.cdtype, self.device)
        self.qmax_t = workspace.constant(self.qmax, self.cdtype, self.device)
        self.block_elems = max(1, block_bytes // 4)
        # the hot path: symmetric min/max scales, float32/64 in place, no stats or codes
        self.plain = (
            spec.symmetric
            and spec.clamp_percentile is None
            and not stats
            and not capture
            and not self.half
        )
        self._views: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}

    def _take(self, key: str, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
        """Workspace view for this job, cached by shape (blocks mostly share one shape)."""
        shape = tuple(shape)
        view = self._views.get((key, shape))
        if view is None:
            view = self.ws.take(key, shape, self.cdtype, self.device)
            self._views[(key, shape)] = view
        return view

    def _kept_lows(self, shape: list[int] | tuple[int, ...]) -> torch.Tensor | None:
        """Where ``-zero_point`` of every group is kept, when asked for."""
        if self.keep_zero_points and not self.symmetric:
            return torch.empty(shape, dtype=self.cdtype, device=self.device)
        return None

    # ------------------------------------------------------------------ drivers

    def run(
        self, view: torch.Tensor, dim: int, row_elements: int, codes: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Single sweep over one segment: each block gets its scales and is quantized at once."""
        scale_shape = list(view.shape)
        scale_shape[dim] = 1
        scales = torch.empty(scale_shape, dtype=self.cdtype, device=self.device)
        lows = self._kept_lows(scale_shape)
        step = max(1, self.block_elems // row_elements)
        blocks = torch.split(view, step)
        code_blocks = torch.split(codes, step) if codes is not None else (None,) * len(blocks)
        low_blocks = torch.split(lows, step) if lows is not None else (None,) * len(blocks)
        invs = torch.split(self.ws.take("inv", tuple(scales.shape), self.cdtype, self.device), step)
        if self.plain:
            self._run_plain(blocks, torch.split(scales, step), invs, dim)
            return scales, None
        for target, scale, inv, code, low in zip(
            blocks, torch.split(scales, step), invs, code_blocks, low_blocks, strict=True
        ):
            work = target if not self.half else self._load(target)
            bounds = self._scales(work, dim, scale, inv, low)
            self._apply(work, target, scale, inv, bounds, code)
        return scales, lows

    def _run_plain(
        self,
        blocks: tuple[torch.Tensor, ...],
        scales: tuple[torch.Tensor, ...],
        invs: tuple[torch.Tensor, ...],
        dim: int,
    ) -> None:
        """The common case with every step inlined: per-block dispatch overhead is measurable.

        Same arithmetic as :meth:`_scales_from` and :meth:`_apply` for a symmetric spec.
        """
        tiny, qmax_t, qmax, ratio = self.tiny, self.qmax_t, self.qmax, self.spec.clamp_max_ratio
        clips = self.clips
        for target, scale, inv in zip(blocks, scales, invs, strict=True):
            torch.amax(target, dim, True, out=scale)
            torch.amin(target, dim, True, out=inv)
            torch.maximum(scale, inv.neg_(), out=scale)
            if ratio is not None:
                scale.mul_(ratio)
            torch.addcdiv(tiny, scale, qmax_t, out=scale)
            torch.reciprocal(scale, out=inv)
            target.mul_(inv)
            if clips:
                target.clamp_(-qmax, qmax)
            target.round_().mul_(scale)

    def run_two_sweeps(
        self, weight: torch.Tensor, codes: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-channel ``(in, out)`` weight: reduce every row block, then quantize each.

        The second sweep runs backwards so that it starts on the blocks still in cache.
        """
        n_out = weight.shape[1]
        step = max(1, self.block_elems // n_out)
        blocks = torch.split(weight, step)
        scale = torch.empty(1, n_out, dtype=self.cdtype, device=self.device)
        inv = self._take("inv", (1, n_out))
        threshold = hi = lo = None
        if self.spec.clamp_percentile is not None:
            threshold = _percentile(weight.abs().to(self.cdtype), self.spec.clamp_percentile, 0)
        if threshold is None or not self.spec.symmetric:
            his = self._take("his", (len(blocks), n_out))
            los = self._take("los", (len(blocks), n_out))
            for block, block_hi, block_lo in zip(
                blocks, torch.split(his, 1), torch.split(los, 1), strict=True
            ):
                work = self._load(block)
                torch.amax(work, 0, keepdim=True, out=block_hi)
                torch.amin(work, 0, keepdim=True, out=block_lo)
            hi, lo = his.amax(0, keepdim=True), los.amin(0, keepdim=True)
        low = self._kept_lows((1, n_out))
        bounds = self._scales_from(hi, lo, threshold, scale, inv, low)
        if self.plain:
            for block in reversed(blocks):
                block.mul_(inv)
                if self.clips:
                    block.clamp_(-self.qmax, self.qmax)
                block.round_().mul_(scale)
            return scale, low
        code_blocks = torch.split(codes, step) if codes is not None else (None,) * len(blocks)
        for block, code in zip(reversed(blocks), reversed(code_blocks), strict=True):
            self._apply(self._load(block), block, scale, inv, bounds, code)
        return scale, low

    # ------------------------------------------------------------------ steps

    def _load(self, target: torch.Tensor) -> torch.Tensor:
        """The block to compute on: ``target`` itself, or a float32 copy of a half block."""
        if not self.half:
            return target
        work = self._take("work", target.shape)
        work.copy_(target)
        return work

    def _scales(
        self,
        work: torch.Tensor,
        dim: int,
        scale: torch.Tensor,
        inv: torch.Tensor,
        low: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Fill ``scale`` and ``inv`` for one block; return asymmetric clamp bounds."""
        threshold = None
        if self.spec.clamp_percentile is not None:
            threshold = _percentile(work.abs(), self.spec.clamp_percentile, dim)
            if self.symmetric:
                return self._scales_from(None, None, threshold, scale, inv, None)
        hi = scale  # reuse the output buffers for the raw range: no allocation per block
        lo = inv if self.symmetric else self._take("lo", scale.shape)
        torch.amax(work, dim, True, out=hi)
        torch.amin(work, dim, True, out=lo)
        return self._scales_from(hi, lo, threshold, scale, inv, low)

    def _scales_from(
        self,
        hi: torch.Tensor | None,
        lo: torch.Tensor | None,
        threshold: torch.Tensor | None,
        scale: torch.Tensor,
        inv: torch.Tensor,
        low: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Turn a range (``hi``/``lo`` and/or a percentile ``threshold``) into scales.

        ``hi`` may alias ``scale`` and ``lo`` may alias ``inv``. Returns ``None`` (symmetric) or
        the clamp bounds ``(-zp, qmax - zp)`` in units of the scale (``-zp`` in ``low`` when
        given).
        """
        spec = self.spec
        if self.symmetric:
            if threshold is not None:
                scale.copy_(threshold)
            else:
                assert hi is not None and lo is not None
                torch.maximum(hi, lo.neg_(), out=scale)  # absmax without an abs() temporary
                if spec.clamp_max_ratio is not None:
                    scale.mul_(spec.clamp_max_ratio)
            torch.addcdiv(self.tiny, scale, self.qmax_t, out=scale)  # tiny + absmax / qmax
            torch.reciprocal(scale, out=inv)
            return None
        assert hi is not None and lo is not None
        top = self._take("top", scale.shape)
        if low is None:
            low = self._take("low", scale.shape)
        torch.clamp(hi, min=0.0, out=top)
        torch.clamp(lo, max=0.0, out=low)
        if spec.clamp_max_ratio is not None:
            top.mul_(spec.clamp_max_ratio)
            low.mul_(spec.clamp_max_ratio)
        if threshold is not None:
            torch.minimum(top, threshold, out=top)
            torch.maximum(low, threshold.neg_(), out=low)
        torch.sub(top, low, out=scale)
        torch.addcdiv(self.tiny, scale, self.qmax_t, out=scale)  # tiny + range / qmax
        torch.reciprocal(scale, out=inv)
        # low <- round(min / scale) = -zp (half-to-even is odd-symmetric); top <- qmax - zp
        low.mul_(inv).round_().clamp_(min=-self.qmax)
        torch.add(low, self.qmax_t, out=top)
        return low, top

    def _apply(
        self,
        work: torch.Tensor,
        target: torch.Tensor,
        scale: torch.Tensor,
        inv: torch.Tensor,
        bounds: tuple[torch.Tensor, torch.Tensor] | None,
        codes: torch.Tensor | None,
    ) -> None:
        """Quantize-dequantize ``work`` with ready scales and store the result in ``target``."""
        stats = self.acc.enabled
        out = self._take("out", work.shape) if stats else work
        if stats:
            self.acc.ref.append(torch.linalg.vector_norm(work))
            torch.mul(work, inv, out=out)
        else:
            out.mul_(inv)
        if bounds is not None:
            out.clamp_(bounds[0], bounds[1])
        elif self.clips:
            out.clamp_(-self.qmax, self.qmax)
        out.round_()
        if codes is not None:  # integers: q (symmetric) or q - zp (asymmetric)
            codes.copy_(out if bounds is None else out - bounds[0])
        out.mul_(scale)
        if not stats:
            if work is not target:
                target.copy_(work)
            return
        if work is target:
            work.sub_(out)  # the exact error w - w', computed while the block is cached
        else:
            target.copy_(out)  # round to the weight's dtype first: the error of what is stored
            work.sub_(target)
        self.acc.err.append(torch.linalg.vector_norm(work))
        self.acc.hi.append(work.amax())
        self.acc.lo.append(work.amin())
        if work is target:
            target.copy_(out)


def _percentile(magnitude: torch.Tensor, percent: float, dim: int) -> torch.Tensor:
    """Linear-interpolated percentile along ``dim`` (keepdim), like ``torch.quantile``.

    Written with ``sort`` because ``torch.quantile`` refuses inputs above 2**24 elements.
    """
    n = magnitude.shape[dim]
    position = percent / 100.0 * (n - 1)
    below = math.floor(position)
    frac = position - below
    ordered = magnitude.sort(dim=dim).values  # NaN sorts last
    if not bool(torch.isfinite(ordered.narrow(dim, n - 1, 1)).all()):
        raise ValueError("the weight contains NaN or infinite values")
    low = ordered.narrow(dim, below, 1)
    if frac == 0.0 or below + 1 >= n:
        return low.clone()
    high = ordered.narrow(dim, below + 1, 1)
    return low + (high - low) * frac
