"""Fast detection of tensors holding NaN or ±Inf.

A NaN or Inf anywhere makes a tensor's sum non-finite, so one reduction per tensor decides
almost every case: summing 124M parameters takes ~30 ms on one core versus ~0.5 s for
``isfinite(t).all()``. The exact element-wise scan runs only for tensors whose sum is not
finite, because a sum of large finite values can overflow; it decides and names them.

torch is imported inside the functions: this module is imported by plugin listings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _checked(tensor: Any) -> bool:
    """Whether ``tensor`` can hold non-finite values and has data to check."""
    if tensor.is_meta or tensor.numel() == 0:
        return False
    return tensor.is_floating_point() or tensor.is_complex()


def _cheap_sum(tensor: Any) -> Any:
    """The tensor's sum; NaN/Inf in, NaN/Inf out.

    torch accumulates fp16/bf16 sums in float32 internally, so summing in the tensor's own
    dtype is exact enough and ~9x faster on CPU than ``sum(dtype=float32)``; only an fp16
    result beyond ±65504 overflows, and the exact scan then decides. 1-byte float formats
    have no native sum kernel and are summed into float32.
    """
    import torch

    if tensor.element_size() == 1:
        return tensor.sum(dtype=torch.float32)
    return tensor.sum()


def _all_finite(tensor: Any) -> bool:
    """Exact element-wise scan; 1-byte float formats are widened (no isfinite kernel)."""
    import torch

    if tensor.element_size() == 1:
        tensor = tensor.to(torch.float16)
    return bool(torch.isfinite(tensor).all())


def nonfinite_tensors(named: Iterable[tuple[str, Any]]) -> list[str]:
    """Names of the tensors in ``named`` that hold NaN or ±Inf, in input order.

    Integer, bool, empty and meta tensors are skipped. The per-tensor sums are gathered
    per device and read back once, so an accelerator synchronizes once per device.
    """
    import torch

    by_device: dict[Any, list[tuple[int, str, Any]]] = {}
    for index, (name, tensor) in enumerate(named):
        if _checked(tensor):
            by_device.setdefault(tensor.device, []).append((index, name, tensor))
    found: list[tuple[int, str]] = []
    with torch.no_grad():
        for items in by_device.values():
            flags = torch.stack([torch.isfinite(_cheap_sum(t)) for _, _, t in items]).tolist()
            for (index, name, tensor), finite in zip(items, flags, strict=True):
                if not finite and not _all_finite(tensor):
                    found.append((index, name))
    return [name for _, name in sorted(found)]


def checkable_count(named: Iterable[tuple[str, Any]]) -> int:
    """How many tensors :func:`nonfinite_tensors` would actually check."""
    return sum(1 for _, tensor in named if _checked(tensor))
