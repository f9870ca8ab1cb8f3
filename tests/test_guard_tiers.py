"""Policy tiers, spectral per-family bands, z-scores and error bounds."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from torch import nn
from transformers import GPT2LMHeadModel, LlamaForCausalLM

from invarlock.core.errors import ConfigError
from invarlock.guards import RMTGuard, SpectralGuard, VarianceGuard
from invarlock.guards.families import weight_family
from invarlock.guards.linalg import random_start, top_singular
from invarlock.guards.tiers import TIER_BANDS, TIERS
from invarlock.plugins.manager import PluginManager
from invarlock.runner.config import parse_config
from invarlock.runner.plan import build_plan

torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("transformer.h.0.attn.c_attn.weight", "attention"),
        ("transformer.h.0.mlp.c_proj.weight", "mlp"),
        ("model.layers.3.self_attn.o_proj.weight", "attention"),
        ("model.layers.3.mlp.down_proj.weight", "mlp"),
        ("model.embed_tokens.weight", "embeddings"),
        ("lm_head.weight", "embeddings"),
        ("encoder.block.0.dense.weight", "other"),
    ],
)
def test_weight_families(name: str, family: str) -> None:
    assert weight_family(name) == family


@pytest.mark.parametrize("guard", sorted(TIER_BANDS))
def test_tiers_are_ordered_from_strict_to_loose(guard: str) -> None:
    """Every band of a stricter tier is at most the looser tier's."""

    def numbers(value: object) -> list[float]:
        if isinstance(value, dict):
            return [x for key in sorted(value) for x in numbers(value[key])]
        if isinstance(value, (tuple, list)):
            return [x for item in value for x in numbers(item)]
        return [float(value)]  # type: ignore[arg-type]

    bands = [numbers(TIER_BANDS[guard][tier]) for tier in TIERS]
    for strict, loose in itertools.pairwise(bands):
        assert all(a <= b for a, b in zip(strict, loose, strict=True)), guard


def test_per_guard_options_win_over_the_tier() -> None:
    tight = SpectralGuard(tier="conservative")
    assert tight.bands["mlp"] == TIER_BANDS["spectral"]["conservative"]["bands"]["mlp"]
    uniform = SpectralGuard(tier="conservative", max_rel_change=0.2, warn_rel_change=0.1)
    assert set(uniform.bands.values()) == {(0.1, 0.2)}
    mixed = SpectralGuard(max_rel_change=0.5, bands={"attention": [0.001, 0.002]})
    assert mixed.bands["attention"] == (0.001, 0.002)
    assert mixed.bands["mlp"][1] == 0.5
    variance = VarianceGuard(tier="aggressive", max_mean_shift=0.5)
    assert variance.max_mean_shift == 0.5
    assert variance.warn_mean_shift == TIER_BANDS["variance"]["aggressive"]["mean_shift"][0]


def scale(module_path: str, factor: float):
    def edit(model: nn.Module) -> None:
        with torch.no_grad():
            model.get_parameter(module_path).mul_(factor)

    return edit


def test_spectral_judges_each_family_with_its_band(gpt2: GPT2LMHeadModel) -> None:
    guard = SpectralGuard(bands={"attention": [0.001, 0.002], "mlp": [0.1, 0.2]})
    guard.prepare(gpt2, None, None, None)
    scale("transformer.h.0.mlp.c_fc.weight", 1.08)(gpt2)  # 8 %: inside the MLP band
    out = guard.validate(gpt2, None, {})
    assert out["action"] == "warn"  # ... but it stands out of its family (z-score)
    assert "z = " in out["message"] and "within mlp" in out["message"]
    scale("transformer.h.1.attn.c_attn.weight", 1.005)(gpt2)  # 0.5 %: beyond attention's
    out = guard.validate(gpt2, None, {})
    assert out["action"] == "abort"
    assert out["metrics"]["worst"][0]["name"] == "transformer.h.1.attn.c_attn.weight"
    layer = out["metrics"]["layers"][0]  # the report's shared per-layer shape
    assert layer["name"] == "transformer.h.1.attn.c_attn.weight"
    assert layer["family"] == "attention"
    assert layer["after"] / layer["before"] == pytest.approx(1.005, rel=1e-5)
    assert "limit 0.20% for attention" in out["message"]
    families = {f["family"]: f for f in out["metrics"]["families"]}
    assert families["mlp"]["max_rel_change"] == pytest.approx(0.08, rel=1e-3)


def test_embeddings_are_a_family_of_their_own(llama: LlamaForCausalLM) -> None:
    guard = SpectralGuard(include=["model.embed_tokens.weight", "*.mlp.up_proj.weight"])
    prep = guard.prepare(llama, None, None, None)
    assert prep["checked"] == 3
    scale("model.embed_tokens.weight", 1.02)(llama)
    out = guard.validate(llama, None, {})
    assert out["action"] == "abort"
    assert "limit 1.00% for embeddings" in out["message"]
    families = {f["family"]: f["max_rel_change"] for f in out["metrics"]["families"]}
    assert families["embeddings"] == pytest.approx(0.02, rel=1e-4) and families["mlp"] < 1e-6


def test_z_score_flags_one_layer_out_of_line(llama: LlamaForCausalLM) -> None:
    # every MLP weight moves 0.4 % (inside a 2 %/4 % band) except one that moves 1.9 %: its
    # z (deviation over the scale, floored at a tenth of the warn band) is 7.5
    guard = SpectralGuard(bands={"mlp": [0.02, 0.04]}, z_max=6.0)
    guard.prepare(llama, None, None, None)
    for layer in llama.model.layers:
        for name in ("gate_proj", "up_proj", "down_proj"):
            with torch.no_grad():
                getattr(layer.mlp, name).weight.mul_(1.004)
    with torch.no_grad():
        llama.model.layers[1].mlp.up_proj.weight.mul_(1.015)
    out = guard.validate(llama, None, {})
    assert out["action"] == "warn"
    assert out["metrics"]["worst"][0]["name"] == "model.layers.1.mlp.up_proj.weight"
    assert out["metrics"]["worst"][0]["z"] > 6.0


def with_spectrum(values: list[float], rows: int, columns: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    left, _ = torch.linalg.qr(torch.randn(rows, len(values), generator=generator))
    right, _ = torch.linalg.qr(torch.randn(columns, len(values), generator=generator))
    return (left * torch.tensor(values)) @ right.T


@pytest.mark.parametrize("gap", [1e-1, 1e-3, 1e-6, 0.0])
def test_lanczos_estimate_and_bound_against_svd_on_near_degenerate_spectra(gap: float) -> None:
    matrix = with_spectrum([2.0, 2.0 - gap, 2.0 - 2 * gap, 1.0, 0.5], 48, 32)
    exact = float(torch.linalg.svdvals(matrix.double())[0])
    top = top_singular(matrix, random_start(32, matrix.device), max_steps=50, tol=1e-4)
    assert top.sigma <= exact * (1 + 1e-6)  # a Ritz value never exceeds σ₁
    assert exact - top.sigma <= top.bound + 1e-6 * exact  # the bound holds


def test_spectral_falls_back_to_svd_where_the_bound_straddles_a_band() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 48, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(with_spectrum([2.0, 1.999, 1.998, 1.0], 48, 32))
    # few Lanczos steps: a loose bound; a band edge right at the change being judged
    guard = SpectralGuard(max_rel_change=0.011, warn_rel_change=0.0099, iterations=2, tol=0.5)
    guard.prepare(model, None, None, None)
    before = float(torch.linalg.svdvals(model[0].weight.detach())[0])
    with torch.no_grad():
        model[0].weight.mul_(1.01)
    out = guard.validate(model, None, {})
    row = out["metrics"]["worst"][0]
    assert row["exact"] is True and out["metrics"]["exact_fallbacks"] == 1
    assert row["sigma_after"] == pytest.approx(before * 1.01, rel=1e-6)
    assert out["action"] == "warn"  # 1 % ± the bound: judged on the exact σ'


def write_config(tmp_path: Path, model_dir: Path, guards: str) -> str:
    return (
        f"model:\n  id: {model_dir}\n  device: cpu\n"
        "edit:\n  name: quant_rtn\n  bits: 8\n"
        f"guards:\n{guards}"
        f"output:\n  dir: {tmp_path / 'runs'}\n"
    )


def test_guards_tier_reaches_every_guard_and_a_block_wins(
    tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    text = write_config(
        tmp_path, tiny_gpt2_dir, "  tier: conservative\n  rmt:\n    tier: aggressive\n"
    )
    config = parse_config(text)
    assert config.guards.order == ["invariants", "spectral", "rmt", "variance"]
    plan = build_plan(config, PluginManager().load())
    tiers = {g.name: g.options.get("tier") for g in plan.guards}
    assert tiers == {
        "invariants": None,  # takes no tier
        "spectral": "conservative",
        "rmt": "aggressive",
        "variance": "conservative",
    }
    rmt = next(g for g in plan.guards if g.name == "rmt")
    assert RMTGuard(**rmt.options).epsilon == RMTGuard(tier="aggressive").epsilon


def test_unknown_tier_is_a_config_error(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"guards\.tier: must be one of conservative"):
        parse_config(write_config(tmp_path, tiny_gpt2_dir, "  tier: paranoid\n"))
