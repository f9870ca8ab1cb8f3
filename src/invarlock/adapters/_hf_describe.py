"""``describe(model)`` for Hugging Face causal LMs: shape, size, dtype, device and tied weights.

Config fields are read through the aliases different families use (``n_layer`` for GPT-2,
``num_hidden_layers`` for LLaMA, ...), so any ``PreTrainedModel`` is described; a plain
``torch.nn.Module`` without a config gets ``None`` for the config-derived fields.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from invarlock.core.structure import block_container, dtype_name, parameter_aliases, tied_groups

_ALIASES: dict[str, tuple[str, ...]] = {
    "n_layer": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "n_head": ("num_attention_heads", "n_head", "num_heads", "n_heads"),
    "n_kv_head": ("num_key_value_heads", "n_head_kv", "num_kv_heads", "n_kv_heads"),
    "hidden_size": ("hidden_size", "n_embd", "d_model", "dim"),
    "intermediate_size": ("intermediate_size", "n_inner", "ffn_dim", "ffn_hidden_size"),
    "vocab_size": ("vocab_size", "n_vocab"),
    "max_position_embeddings": ("max_position_embeddings", "n_positions", "n_ctx"),
}

#: Families whose config leaves the MLP width unset to mean 4 x hidden size.
_FOUR_X_MLP = frozenset({"gpt2", "gpt_neo", "gptj", "codegen"})


def config_value(config: Any, field: str) -> Any:
    """The first non-``None`` attribute of ``config`` among ``field``'s aliases."""
    for name in _ALIASES[field]:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return None


def _shape_fields(config: Any) -> dict[str, Any]:
    fields = {field: config_value(config, field) for field in _ALIASES}
    if fields["n_kv_head"] is None and fields["n_head"] is not None:
        # multi-query models (e.g. Falcon, GPT-BigCode) share one key/value head
        fields["n_kv_head"] = 1 if getattr(config, "multi_query", False) else fields["n_head"]
    # GPT-2 style configs leave n_inner=None to mean 4 * hidden size
    if (
        fields["intermediate_size"] is None
        and fields["hidden_size"] is not None
        and getattr(config, "model_type", None) in _FOUR_X_MLP
    ):
        fields["intermediate_size"] = 4 * fields["hidden_size"]
    head_dim = getattr(config, "head_dim", None)
    if head_dim is None and fields["hidden_size"] and fields["n_head"]:
        head_dim = fields["hidden_size"] // fields["n_head"]
    fields["head_dim"] = head_dim
    return fields


def _unique_parameters(model: Any) -> list[Any]:
    """One parameter per distinct tensor (a tied LM head counts once)."""
    params = dict(model.named_parameters(remove_duplicate=False))
    return [params[names[0]] for names in parameter_aliases(model).values()]


def _dtype_and_device(params: list[Any]) -> tuple[str | None, str | None]:
    if not params:
        return None, None
    by_dtype: Counter[str] = Counter()
    for param in params:
        by_dtype[dtype_name(param.dtype)] += param.numel()
    devices = sorted({str(param.device) for param in params})
    return by_dtype.most_common(1)[0][0], ",".join(devices)


def describe_model(model: Any) -> dict[str, Any]:
    """The ``ModelDescription`` mapping for a Hugging Face (or plain torch) model."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None) or "unknown"
    fields = _shape_fields(config) if config is not None else dict.fromkeys([*_ALIASES, "head_dim"])
    params = _unique_parameters(model)
    dtype, device = _dtype_and_device(params)
    return {
        "model_type": model_type,
        "family": model_type,
        "model_class": type(model).__name__,
        "name_or_path": getattr(config, "name_or_path", None) or None,
        **fields,
        "n_params": sum(param.numel() for param in params),
        "dtype": dtype,
        "device": device,
        "tied_weights": sorted(sorted(group) for group in tied_groups(model)),
        "block_container": block_container(model),
    }
