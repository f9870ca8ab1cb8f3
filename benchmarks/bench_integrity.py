"""Cost of the whole-model fingerprint (runner/integrity.py) against loading the model.

Builds, from configs (random weights, no downloads), a GPT-2-small-shaped model (124M) and
a model shaped like the default ``smollm2-135m`` (LLaMA, 30 × 576, tied), saves each with
``save_pretrained`` (safetensors), then in one run times side by side:

- ``load``: ``HF_Causal_Adapter().load_model(dir)`` from disk (page cache warm),
- ``fingerprint``: ``Fingerprint.of(model)``, xxh3-128 over every parameter and buffer,
- ``sha256``: the same bytes through the snapshot's SHA-256 (for comparison).

A run makes 1 fingerprint at load, one check after each guard's prepare and validate, one
after the edit and one after a restore: with 3 guards, 8 passes. Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_integrity.py [--repeats 5] [--dtype float32]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any


def _models() -> dict[str, Any]:
    from transformers import GPT2Config, LlamaConfig

    return {
        "gpt2-small": GPT2Config(n_layer=12, n_embd=768, n_head=12, vocab_size=50257),
        "smollm2-135m-shaped": LlamaConfig(
            hidden_size=576,
            intermediate_size=1536,
            num_hidden_layers=30,
            num_attention_heads=9,
            num_key_value_heads=3,
            vocab_size=49152,
            tie_word_embeddings=True,
        ),
    }


def _median_ms(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch threads {torch.get_num_threads()}, dtype {args.dtype}")
    header = f"{'model':<20} {'MB':>7} {'load ms':>9} {'fp ms':>8} {'fp GB/s':>8}"
    print(header + f" {'fp/load':>8} {'sha ms':>8} {'sha GB/s':>9} {'sha/fp':>7}")
    for name, config in _models().items():
        model = AutoModelForCausalLM.from_config(config).to(getattr(torch, args.dtype))
        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            del model
            print(_row(name, folder, args.repeats))


def _row(name: str, folder: str, repeats: int) -> str:
    from invarlock.adapters import HF_Causal_Adapter
    from invarlock.core.structure import named_tensors, storage_key
    from invarlock.models.fingerprint import Fingerprint
    from invarlock.runner.snapshot import _hash_many

    adapter = HF_Causal_Adapter()
    load_ms = _median_ms(lambda: adapter.load_model(folder, device="cpu"), 3)
    model = adapter.load_model(folder, device="cpu")
    mb = Fingerprint.of(model).nbytes / 1e6
    fp_ms = _median_ms(lambda: Fingerprint.of(model), repeats)
    distinct: dict[Any, Any] = {}
    for tensor_name, tensor in named_tensors(model).items():
        distinct.setdefault(storage_key(tensor), (tensor_name, tensor))
    items = list(distinct.values())
    sha_ms = _median_ms(lambda: _hash_many(items), max(1, repeats // 2))
    return (
        f"{name:<20} {mb:7.1f} {load_ms:9.1f} {fp_ms:8.1f} {mb / fp_ms:8.2f}"
        f" {fp_ms / load_ms:8.2f} {sha_ms:8.1f} {mb / sha_ms:9.2f} {sha_ms / fp_ms:7.1f}"
    )


if __name__ == "__main__":
    main()
