"""Structural facts about a torch model, shared by the edit, the guards and the adapters.

One definition each of: the transformer block container, the output-channel axis of a
Linear-like module, which parameters share memory (tied weights: :func:`storage_key`) and
the name a dtype is recorded under (:func:`dtype_name`). torch is imported inside the
functions, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: Identity of the memory a parameter views; equal keys mean tied parameters.
StorageKey = tuple[Any, ...]


def block_container(model: Any) -> str | None:
    """Name of the ``nn.ModuleList`` holding the most parameters (the transformer blocks:
    ``transformer.h`` in GPT-2, ``model.layers`` in LLaMA), or ``None`` when there is none."""
    from torch import nn

    best_name, best_size = None, 0
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList):
            size = sum(p.numel() for p in module.parameters())
            if size > best_size:
                best_name, best_size = name, size
    return best_name


def output_axis(module: Any) -> int | None:
    """The output-channel axis of a Linear-like module's 2-D weight: 0 for ``nn.Linear``
    ``(out, in)``, 1 for transformers' ``Conv1D`` ``(in, out)``; ``None`` for other modules."""
    from torch import nn

    weight = getattr(module, "weight", None)
    if weight is None or getattr(weight, "ndim", 0) != 2:
        return None
    if isinstance(module, nn.Linear):
        return 0
    if _is_conv1d(module):
        return 1
    return None


def _is_conv1d(module: Any) -> bool:
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # plain torch models have no Conv1D
        return False
    return isinstance(module, Conv1D)


def dtype_name(dtype: Any) -> str:
    """The name reports, manifests and snapshots record for a torch dtype:
    ``torch.bfloat16`` → ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")


def storage_key(tensor: Any) -> StorageKey:
    """Device, storage address, offset, shape, stride and dtype: what tied tensors share.

    Meta tensors have no memory; tied meta parameters are one object, so its id stands in.
    """
    if tensor.is_meta:
        return ("meta", id(tensor))
    return (
        tensor.device.type,
        tensor.device.index,
        tensor.untyped_storage().data_ptr(),
        tensor.storage_offset(),
        tuple(tensor.shape),
        tuple(tensor.stride()),
        tensor.dtype,
    )


def parameter_aliases(model: Any) -> dict[StorageKey, tuple[str, ...]]:
    """Every parameter name of each distinct tensor, in ``named_parameters`` order.

    Empty tensors have no memory to share and are left out.
    """
    groups: dict[StorageKey, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        if param.numel() == 0:
            continue
        groups.setdefault(storage_key(param), []).append(name)
    return {key: tuple(names) for key, names in groups.items()}


def tied_groups(model: Any) -> list[list[str]]:
    """Groups (two or more names, in registration order) of parameters sharing memory."""
    return [list(names) for names in parameter_aliases(model).values() if len(names) > 1]


def named_tensors(model: Any) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of ``model`` by name, tied names included."""
    tensors = dict(model.named_parameters(remove_duplicate=False))
    tensors.update(model.named_buffers(remove_duplicate=False))
    return tensors


def raw_bytes(tensor: torch.Tensor, name: str) -> Any:
    """The tensor's bytes in row-major order as a ``uint8`` array (no copy for contiguous CPU)."""
    import torch

    from invarlock.core.errors import RestoreError

    data = tensor.detach()
    if data.is_meta:
        raise RestoreError(f"tensor {name!r} is on the meta device (offloaded); cannot read it")
    if data.layout != torch.strided or data.is_quantized:
        raise RestoreError(f"tensor {name!r} has layout {data.layout}; only dense tensors work")
    if data.device.type != "cpu":
        data = data.to("cpu")
    if not data.is_contiguous():
        data = data.contiguous()
    return data.reshape(-1).view(torch.uint8).numpy()
