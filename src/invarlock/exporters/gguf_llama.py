"""Llama-family GGUF helpers: llama.cpp's q/k row order and metadata from an HF directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["llamacpp_rope_order", "tokenizer_metadata", "write_llama_metadata"]


def llamacpp_rope_order(weight: Any, n_heads: int) -> Any:
    """Reorder the rows of a q/k projection from HF's rotary layout to llama.cpp's.

    HF rotates the first half of each head against the second half; llama.cpp rotates
    adjacent pairs. Within each head the rows ``[a0..a(d/2-1), b0..b(d/2-1)]`` become
    ``[a0, b0, a1, b1, ...]``. transformers' GGUF loader applies the inverse.
    """
    rows, cols = weight.shape
    half = rows // n_heads // 2
    return weight.reshape(n_heads, 2, half, cols).swapaxes(1, 2).reshape(rows, cols)


def tokenizer_metadata(model_dir: Path) -> dict[str, Any]:
    """Vocabulary, merges, token types and special ids from a saved byte-level BPE tokenizer."""
    with (model_dir / "tokenizer.json").open(encoding="utf-8") as handle:
        spec = json.load(handle)
    model = spec.get("model", {})
    if model.get("type") != "BPE":
        raise ValueError(f"{model_dir / 'tokenizer.json'}: only BPE tokenizers can be exported")
    vocab: dict[str, int] = dict(model["vocab"])
    for added in spec.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
    tokens = [""] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    special = {added["content"] for added in spec.get("added_tokens", []) if added["special"]}
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    with (model_dir / "tokenizer_config.json").open(encoding="utf-8") as handle:
        tok_config = json.load(handle)

    def token_id(key: str) -> int | None:
        value = tok_config.get(key)
        name = value.get("content") if isinstance(value, dict) else value
        return vocab.get(name) if name is not None else None

    return {
        "tokens": tokens,
        "token_types": [3 if token in special else 1 for token in tokens],  # CONTROL / NORMAL
        "merges": merges,
        "bos": token_id("bos_token"),
        "eos": token_id("eos_token"),
        "pad": token_id("pad_token"),
        "add_bos": bool(spec.get("post_processor", {}).get("type") == "TemplateProcessing"),
    }


def write_llama_metadata(
    writer: Any, config: dict[str, Any], tok: dict[str, Any], *, name: str, file_type: int
) -> None:
    """Llama hyper-parameters and a byte-level BPE tokenizer as GGUF metadata."""
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    rope = config.get("rope_parameters") or {}
    writer.add_name(name)
    writer.add_file_type(file_type)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope.get("rope_theta", config.get("rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    writer.add_vocab_size(config["vocab_size"])
    writer.add_tokenizer_model("gpt2")  # byte-level BPE
    writer.add_token_list(tok["tokens"])
    writer.add_token_types(tok["token_types"])
    writer.add_token_merges(tok["merges"])
    for key, adder in (("bos", writer.add_bos_token_id), ("eos", writer.add_eos_token_id)):
        if tok[key] is not None:
            adder(tok[key])
    if tok["pad"] is not None:
        writer.add_pad_token_id(tok["pad"])
    writer.add_add_bos_token(tok["add_bos"])
