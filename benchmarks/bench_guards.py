"""Time the guard chain against one evaluation pass and against full SVD, side by side.

For the default model (SmolLM2-135M) and a GPT-2-small shape (124M parameters, random
init), in one process on one thread: calibration windows of the bundled corpus (8 × 256
tokens by default, as configs/default.yaml; the default model's tokenizer, whose ids are
valid GPT-2 ids), then

* the whole chain: invariants → spectral → rmt → variance, prepare (with the windows as
  ``calib``) + int8 per-channel RTN + validate, per guard;
* one evaluation pass over the same windows (the built-in ``perplexity`` evaluator);
* the full-SVD reference: ``torch.linalg.svdvals`` of every in-scope weight before and
  after the edit (what the spectral and RMT guards avoid computing);
* the spectral guard's σ against the exact σ₁ of the same weights.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/bench_guards.py [--models default gpt2-small]``
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from invarlock.data.corpus import corpus_text
from invarlock.edits import get_edit
from invarlock.evaluation.perplexity import PerplexityEvaluator
from invarlock.guards import BUILTIN_GUARDS
from invarlock.guards.scope import resolve_scope

DEFAULT_MODEL = "smollm2-135m"


def timed(func: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``func`` once; return its result and the wall time in seconds."""
    start = time.perf_counter()
    value = func()
    return value, time.perf_counter() - start


def load(name: str) -> tuple[torch.nn.Module, Any]:
    """The model and the tokenizer of the default model (used for both shapes)."""
    from invarlock.adapters.hf_causal import HF_Causal_Adapter

    adapter = HF_Causal_Adapter()
    tokenizer = adapter.load_tokenizer(DEFAULT_MODEL)
    if name == "default":
        return adapter.load_model(DEFAULT_MODEL, device="cpu").float().eval(), tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config()).eval(), tokenizer


def calibration(tokenizer: Any, windows: int, seq_len: int, batch: int) -> list[torch.Tensor]:
    """The first ``windows`` windows of ``northanger_abbey`` in batches of ``batch``."""
    ids = tokenizer(corpus_text("northanger_abbey"), return_tensors="pt")["input_ids"][0]
    rows = ids[: windows * seq_len].view(windows, seq_len)
    return list(rows.split(batch))


def svd_all(model: torch.nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """Every singular value of every weight (tall orientation: LAPACK is faster)."""
    spectra = {}
    with torch.no_grad():
        for name in names:
            matrix = model.get_parameter(name).detach()
            spectra[name] = torch.linalg.svdvals(
                matrix.T if matrix.shape[0] < matrix.shape[1] else matrix
            )
    return spectra


def bench(name: str, args: argparse.Namespace) -> dict[str, float]:
    (model, tokenizer), load_s = timed(lambda: load(name))
    calib = calibration(tokenizer, args.windows, args.seq_len, args.batch)
    names = [w.name for w in resolve_scope(model, (), ()).weights]
    params = sum(p.numel() for p in model.parameters())
    print(
        f"\n## {name}: {type(model).__name__}, {params / 1e6:.1f}M parameters, "
        f"{len(names)} in-scope weights, loaded in {load_s:.1f} s; calib {args.windows} × "
        f"{args.seq_len} tokens; edit int8 per-channel RTN; threads={torch.get_num_threads()}"
    )
    evaluator = PerplexityEvaluator()

    def evaluation_pass() -> None:
        with torch.inference_mode():
            for batch in calib:
                evaluator.window_losses(model, batch)

    _, eval_s = timed(evaluation_pass)
    guards = [cls() for cls in BUILTIN_GUARDS]
    prepare_s, validate_s, results = {}, {}, {}
    for guard in guards:
        _, prepare_s[guard.name] = timed(lambda g=guard: g.prepare(model, None, calib, None))
    spectra_before, svd_before_s = timed(lambda: svd_all(model, names))
    exact_sigma = {n: float(s[0]) for n, s in spectra_before.items()}
    ours_sigma = guards[1].sigmas
    edit = get_edit("quant_rtn")
    context = {"edit": edit.apply(model, edit.parse({"bits": 8})).to_dict()}
    for guard in guards:
        results[guard.name], validate_s[guard.name] = timed(
            lambda g=guard: g.validate(model, None, context)
        )
    _, svd_after_s = timed(lambda: svd_all(model, names))

    print(f"\n{'guard':<11}{'prepare s':>11}{'validate s':>12}  action")
    for guard in guards:
        print(
            f"{guard.name:<11}{prepare_s[guard.name]:>11.2f}{validate_s[guard.name]:>12.2f}"
            f"  {results[guard.name]['action']}"
        )
    chain_s = sum(prepare_s.values()) + sum(validate_s.values())
    svd_s = svd_before_s + svd_after_s
    relative = max(abs(ours_sigma[n] - exact_sigma[n]) / exact_sigma[n] for n in ours_sigma)
    print(f"\nwhole chain (prepare + validate):   {chain_s:8.2f} s")
    print(f"one evaluation pass, same windows:  {eval_s:8.2f} s")
    print(f"full SVD before + after:            {svd_s:8.2f} s")
    print(
        f"chain / evaluation pass: {chain_s / eval_s:.1%}   chain / full SVD: {chain_s / svd_s:.1%}"
    )
    print(f"spectral σ vs exact σ₁: max relative error {relative:.2e}")
    return {"chain": chain_s, "eval": eval_s, "svd": svd_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default", "gpt2-small"])
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    found = {name: bench(name, args) for name in args.models}
    print(
        f"\n{'model':<12}{'chain s':>9}{'eval s':>9}{'svd s':>9}{'chain/eval':>12}{'chain/svd':>11}"
    )
    for name, row in found.items():
        print(
            f"{name:<12}{row['chain']:>9.2f}{row['eval']:>9.2f}{row['svd']:>9.2f}"
            f"{row['chain'] / row['eval']:>12.1%}{row['chain'] / row['svd']:>11.1%}"
        )


if __name__ == "__main__":
    main()
