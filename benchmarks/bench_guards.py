"""Time the built-in guards on a GPT-2-small-shaped model and check spectral against SVD.

Builds a randomly initialized GPT-2 (124M parameters by default) from its config, applies
an int8 per-channel RTN edit between prepare and validate, and prints, side by side in one
process on one thread:

* invariants / spectral / variance: prepare and validate wall time;
* the spectral guard against exact SVD (``torch.linalg.svdvals`` on every in-scope weight,
  before and after the edit): time, ratio and the largest σ difference.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/bench_guards.py [--n-layer 12] [--bits 8]``
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from invarlock.guards import InvariantsGuard, SpectralGuard, VarianceGuard
from invarlock.guards._scope import ScopedWeight, resolve_scope


def timed(func: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``func`` once; return its result and the wall time in milliseconds."""
    start = time.perf_counter()
    value = func()
    return value, (time.perf_counter() - start) * 1e3


def rtn_(model: torch.nn.Module, weights: list[ScopedWeight], bits: int) -> None:
    """Symmetric per-output-channel round-to-nearest, in place (the benchmark's edit)."""
    qmax = 2 ** (bits - 1) - 1
    with torch.no_grad():
        for weight in weights:
            tensor = model.get_parameter(weight.name)
            absmax = tensor.abs().amax(dim=1 - weight.out_axis, keepdim=True)
            scale = absmax.clamp_min(torch.finfo(tensor.dtype).tiny) / qmax
            tensor.copy_((tensor / scale).round().clamp(-qmax, qmax) * scale)


def svd_sigmas(model: torch.nn.Module, weights: list[ScopedWeight]) -> dict[str, float]:
    """Exact top singular value of every weight (full SVD of the tall orientation)."""
    sigmas = {}
    for weight in weights:
        matrix = model.get_parameter(weight.name).detach()
        if matrix.shape[0] < matrix.shape[1]:  # LAPACK is ~3x faster on tall matrices
            matrix = matrix.T
        sigmas[weight.name] = float(torch.linalg.svdvals(matrix)[0])
    return sigmas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-layer", type=int, default=12, help="GPT-2 blocks (12 = 124M)")
    parser.add_argument("--bits", type=int, default=8, help="RTN bits of the edit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    model, build_ms = timed(lambda: GPT2LMHeadModel(GPT2Config(n_layer=args.n_layer)).eval())
    n_params = sum(p.numel() for p in model.parameters())
    weights = resolve_scope(model, (), ()).weights
    print(
        f"GPT-2 n_layer={args.n_layer}: {n_params / 1e6:.1f}M parameters, "
        f"{len(weights)} in-scope weights, built in {build_ms:.0f} ms, "
        f"threads={torch.get_num_threads()}, edit: int{args.bits} RTN per channel"
    )

    guards = [InvariantsGuard(), SpectralGuard(), VarianceGuard()]
    prepare_ms = {}
    for guard in guards:
        _, prepare_ms[guard.name] = timed(lambda g=guard: g.prepare(model, None, None, None))
    svd_before, svd_before_ms = timed(lambda: svd_sigmas(model, weights))
    spectral = guards[1]
    ours_before = spectral.sigmas

    rtn_(model, weights, args.bits)

    results, validate_ms = {}, {}
    for guard in guards:
        results[guard.name], validate_ms[guard.name] = timed(
            lambda g=guard: g.validate(model, None, {})
        )
    svd_after, svd_after_ms = timed(lambda: svd_sigmas(model, weights))
    ours_after = {
        row["name"]: row["sigma_after"] for row in results["spectral"]["metrics"]["worst"]
    }

    print(f"\n{'guard':<11}{'prepare ms':>12}{'validate ms':>13}  action    headline metric")
    headline = {
        "invariants": ("finite_checked", "tensors checked for NaN/Inf"),
        "spectral": ("max_rel_change", "max |σ'-σ|/σ"),
        "variance": ("max_ratio_change", "max |std'/std-1|"),
    }
    for guard in guards:
        key, label = headline[guard.name]
        value = results[guard.name]["metrics"][key]
        print(
            f"{guard.name:<11}{prepare_ms[guard.name]:>12.1f}{validate_ms[guard.name]:>13.1f}"
            f"  {results[guard.name]['action']:<9} {label} = {value:.4g}"
        )

    ours_ms = prepare_ms["spectral"] + validate_ms["spectral"]
    svd_ms = svd_before_ms + svd_after_ms
    errors = [abs(ours_before[name] - svd_before[name]) for name in svd_before]
    relative = [abs(ours_before[name] - svd_before[name]) / svd_before[name] for name in svd_before]
    after_errors = [abs(ours_after[name] - svd_after[name]) for name in ours_after]
    true_change = max(abs(svd_after[n] - svd_before[n]) / svd_before[n] for n in svd_before)
    print("\nspectral guard vs exact SVD (torch.linalg.svdvals, tall orientation), same weights:")
    print(
        f"  guard prepare+validate: {ours_ms:9.1f} ms "
        f"({prepare_ms['spectral']:.1f} + {validate_ms['spectral']:.1f})"
    )
    print(f"  svdvals before+after:   {svd_ms:9.1f} ms ({svd_before_ms:.1f} + {svd_after_ms:.1f})")
    print(f"  speed-up: {svd_ms / ours_ms:.1f}x")
    print(
        f"  max |σ_guard - σ_svd| before edit: {max(errors):.3e} "
        f"(max relative {max(relative):.3e}; σ range {min(svd_before.values()):.3f}"
        f"–{max(svd_before.values()):.3f})"
    )
    print(
        f"  max |σ'_guard - σ'_svd| after edit (top {len(after_errors)} layers): "
        f"{max(after_errors):.3e}"
    )
    print(
        f"  max relative change: guard {results['spectral']['metrics']['max_rel_change']:.3e}"
        f", exact {true_change:.3e}"
    )


if __name__ == "__main__":
    main()
