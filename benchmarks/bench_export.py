"""Export formats side by side, and the gguf grid against the plain RTN kernel.

Builds a LLaMA-shaped model from a config (random float32 weights, GQA, every width a
multiple of 32, a real BPE tokenizer; no downloads), applies ``quant_rtn`` with
``grid: gguf_q8_0`` once, then writes every format with :func:`export_all`, which loads each
back through its consumer's loader and proves it bit-equal. Prints per format the bytes
written, the write and load-back seconds, and the size relative to ``hf`` (the dense
checkpoint). Then times the grid edit against plain symmetric group-32 RTN on the same
weights (median of repeats, weights restored untimed) and prints the ratio.

    OMP_NUM_THREADS=1 python benchmarks/bench_export.py          # about 2 minutes
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from invarlock.edits import get_edit
from invarlock.exporters import FORMATS, Source
from invarlock.exporters.run import export_all
from invarlock.testing.models import tiny_config, train_tokenizer


def build(out: Path, hidden: int, layers: int) -> Path:
    tokenizer = train_tokenizer("llama")
    config = tiny_config(  # the tiny LLaMA, widened and deepened to a benchmark size
        "llama",
        tokenizer,
        tie_word_embeddings=False,
        hidden_size=hidden,
        intermediate_size=hidden * 5 // 2,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 128,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def time_edit(model_dir: Path, params: dict, repeats: int) -> float:
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    edit = get_edit("quant_rtn")
    config = edit.parse({**params, "stats": False})
    original = {name: p.detach().clone() for name, p in model.named_parameters()}
    times = []
    for _ in range(repeats):
        with torch.no_grad():
            for name, param in model.named_parameters():
                param.copy_(original[name])
        began = time.perf_counter()
        edit.apply(model, config)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="invarlock-bench-export-") as tmp:
        model_dir = build(Path(tmp) / "model", args.hidden, args.layers)
        model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        edit = get_edit("quant_rtn")
        config = edit.parse({"grid": "gguf_q8_0"})
        codes = edit.export(config, edit.apply(model, config))
        out = Path(tmp) / "exports"
        out.mkdir()
        entries = export_all(list(FORMATS), model, codes, out, Source.of(str(model_dir)))
        sizes = {e["format"]: sum(f["bytes"] for f in e["files"]) for e in entries}
        print(f"llama {args.layers} x {args.hidden}, float32, edit grid gguf_q8_0")
        print(f"{'format':20} {'MB':>8} {'vs hf':>6} {'write s':>8} {'load s':>7}  proof")
        for entry in entries:
            name = entry["format"]
            proof = "bit-equal" if entry["proof"]["bit_equal"] else "DIFFERS"
            print(
                f"{name:20} {sizes[name] / 1e6:8.1f} {sizes[name] / sizes['hf']:6.2f}"
                f" {entry['seconds']['write']:8.2f} {entry['seconds']['load']:7.2f}  {proof}"
            )
        print()
        grid = time_edit(model_dir, {"grid": "gguf_q8_0"}, args.repeats)
        plain = time_edit(model_dir, {"bits": 8, "group_size": 32}, args.repeats)
        print(f"{'edit':28} {'ms':>8} {'vs plain':>8}")
        print(f"{'plain int8 group32 RTN':28} {plain * 1e3:8.1f} {1.0:8.2f}")
        print(f"{'gguf_q8_0 grid':28} {grid * 1e3:8.1f} {grid / plain:8.2f}")


if __name__ == "__main__":
    main()
