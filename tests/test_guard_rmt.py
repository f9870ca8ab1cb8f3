"""The ``rmt`` guard and its outlier counters, against exact SVD and on tiny real models."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from reference_rtn import rtn_
from torch import nn
from transformers import GPT2LMHeadModel, LlamaForCausalLM

from invarlock.core.results import check_validate_result
from invarlock.guards import RMTGuard
from invarlock.guards.mp import (
    bulk_edge,
    count_inertia,
    count_lowrank,
    count_svd,
    positive_inertia,
)

torch.set_num_threads(1)


def with_spectrum(values: list[float], rows: int, columns: int, seed: int = 0) -> torch.Tensor:
    """A ``rows × columns`` matrix with exactly the singular values ``values``."""
    generator = torch.Generator().manual_seed(seed)
    left, _ = torch.linalg.qr(torch.randn(rows, len(values), generator=generator))
    right, _ = torch.linalg.qr(torch.randn(columns, len(values), generator=generator))
    return (left * torch.tensor(values)) @ right.T


def spiked(rows: int, columns: int, spikes: list[float], seed: int = 0) -> torch.Tensor:
    """Gaussian noise (entries of variance 1/columns) plus rank-one spikes of the given sizes."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(rows, columns, generator=generator) / columns**0.5
    signal = sum(
        s
        * torch.outer(
            torch.randn(rows, generator=generator), torch.randn(columns, generator=generator)
        )
        / (rows * columns) ** 0.5
        for s in spikes
    )
    return noise + signal


@pytest.mark.parametrize("shape", [(40, 40), (64, 24), (24, 64)])
@pytest.mark.parametrize("seed", range(3))
def test_counters_match_exact_svd_on_spiked_matrices(shape: tuple[int, int], seed: int) -> None:
    matrix = spiked(*shape, spikes=[6.0, 4.0, 3.0], seed=seed)
    exact = count_svd(matrix, margin=0.05)
    values = torch.linalg.svdvals(matrix.double())
    assert exact.count == int((values > exact.edge).sum()) >= 1
    assert count_inertia(matrix, margin=0.05).count == exact.count
    fast = count_lowrank(matrix, margin=0.05, rank=8)
    assert fast.count == exact.count
    assert not fast.exact and fast.bound > 0  # a clear gap: the residual bound certifies it


def test_counters_on_near_degenerate_spectra() -> None:
    # a cluster of nearly equal singular values straddling nothing, and one within 1e-6 of
    # the edge: every counter must place each value on the right side of the edge
    matrix = with_spectrum([3.0, 3.0 - 1e-7, 3.0 - 2e-7, 1.0, 1.0, 0.5, 0.25], 30, 20)
    edge = bulk_edge(matrix, 0.0)
    exact = count_svd(matrix, margin=0.0)
    assert exact.count == int((torch.linalg.svdvals(matrix) > edge).sum())
    assert count_inertia(matrix, margin=0.0).count == exact.count
    assert count_lowrank(matrix, margin=0.0, rank=4).count == exact.count


def test_positive_inertia_handles_two_by_two_pivots() -> None:
    generator = torch.Generator().manual_seed(1)
    for size in (5, 17, 40):
        base = torch.randn(size, size, generator=generator, dtype=torch.float64)
        symmetric = base + base.T  # indefinite: Bunch–Kaufman picks 2×2 pivots
        _, pivots = torch.linalg.ldl_factor(symmetric)
        expected = int((torch.linalg.eigvalsh(symmetric) > 0).sum())
        assert positive_inertia(symmetric) == expected
    assert bool((pivots < 0).any())  # the last case did exercise 2×2 blocks
    assert positive_inertia(-torch.eye(4, dtype=torch.float64)) == 0


@pytest.mark.parametrize("seed", range(3))
def test_lowrank_falls_back_where_the_spectrum_has_no_gap(seed: int) -> None:
    # many spikes of graded strength, as in trained weights: values pass the edge with no
    # gap, the residual bound cannot certify the count and the exact inertia count decides
    matrix = spiked(120, 80, spikes=[1.0 + 0.1 * i for i in range(20)], seed=seed)
    counted = count_lowrank(matrix, margin=0.0, rank=8)
    assert counted.exact and counted.count == count_svd(matrix, margin=0.0).count


def plant_structure(model: LlamaForCausalLM) -> None:
    """Add strong rank-one directions to two MLP weights: new outliers beyond the bulk."""
    with torch.no_grad():
        for layer in model.model.layers:
            weight = layer.mlp.up_proj.weight
            u, v = torch.ones(weight.shape[0]), torch.ones(weight.shape[1])
            weight.add_(5 * float(weight.std()) * torch.outer(u, v) / 8)


def run(guard: RMTGuard, model: nn.Module, edit, context=None) -> dict:
    prep = guard.prepare(model, None, None, None)
    assert prep["ready"] is True, prep
    edit(model)
    out = guard.validate(model, None, context if context is not None else {})
    json.dumps(prep, allow_nan=False)
    json.dumps(out, allow_nan=False)
    check_validate_result("rmt", out)  # contract-valid
    return out


@pytest.mark.parametrize("model_name", ["gpt2", "llama"])
def test_noop_and_int8_pass(model_name: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(model_name)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    noop = run(RMTGuard(), model, lambda m: None)
    assert noop["action"] == "continue" and noop["metrics"]["max_changed_fraction"] == 0.0
    model.load_state_dict(state)
    int8 = run(RMTGuard(), model, lambda m: rtn_(m, 8))
    assert int8["action"] == "continue", int8["message"]


def test_new_outliers_abort_and_name_the_family(llama: LlamaForCausalLM) -> None:
    out = run(RMTGuard(), llama, plant_structure)
    assert out["action"] == "abort" and out["passed"] is False
    mlp = next(f for f in out["metrics"]["families"] if f["family"] == "mlp")
    assert mlp["after"] > mlp["before"]
    assert out["message"].startswith("mlp weights:")
    assert "up_proj" in out["message"]
    attention = next(f for f in out["metrics"]["families"] if f["family"] == "attention")
    assert attention["action"] == "continue"


@pytest.mark.parametrize("method", ["inertia", "lowrank", "svd"])
def test_methods_agree_on_a_tiny_model(method: str, llama: LlamaForCausalLM) -> None:
    out = run(RMTGuard(method=method), llama, plant_structure)
    reference = run(RMTGuard(method="svd"), llama, lambda m: None)
    assert out["metrics"]["families"][0]["after"] == reference["metrics"]["families"][0]["after"]


def test_block_scope_and_tier_are_honoured(llama: LlamaForCausalLM) -> None:
    excluded = run(RMTGuard(exclude=["*.up_proj.*"]), llama, plant_structure)
    assert excluded["action"] == "continue" and excluded["metrics"]["checked"] == 12
    loose = RMTGuard(tier="aggressive", epsilon={"mlp": [5.0, 10.0]})
    assert loose.epsilon["mlp"] == (5.0, 10.0)
    assert loose.epsilon["attention"] == RMTGuard(tier="aggressive").epsilon["attention"]
    assert RMTGuard(tier="conservative").epsilon["mlp"] < RMTGuard(tier="balanced").epsilon["mlp"]


def test_nonfinite_weight_aborts(gpt2: GPT2LMHeadModel) -> None:
    def poison(model: nn.Module) -> None:
        with torch.no_grad():
            model.transformer.h[1].mlp.c_fc.weight[0, 0] = float("nan")

    out = run(RMTGuard(), gpt2, poison)
    assert out["action"] == "abort"
    assert out["message"] == "weight 'transformer.h.1.mlp.c_fc.weight' holds non-finite values"


@pytest.mark.parametrize(
    ("options", "error", "pattern"),
    [
        ({"method": "fast"}, ValueError, "method: must be one of inertia"),
        ({"epsilon": {"conv": [0.1, 0.2]}}, ValueError, "unknown family 'conv'"),
        (
            {"epsilon": {"mlp": [0.3, 0.2]}},
            ValueError,
            r"epsilon.mlp\[0\]: must not exceed mlp\[1\]",
        ),
        ({"margin": -0.1}, ValueError, "margin: must be a number >= 0"),
        ({"tier": "strict"}, ValueError, "tier: must be one of"),
    ],
)
def test_bad_options(options: dict, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        RMTGuard(**options)
