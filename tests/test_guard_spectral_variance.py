"""The ``spectral`` and ``variance`` guards against reference RTN edits on tiny real models."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from reference_rtn import output_axis, rtn_
from torch import nn
from transformers import GPT2LMHeadModel, LlamaForCausalLM

from invarlock.core.edit import EditSummary, LayerStats
from invarlock.guards import SpectralGuard, VarianceGuard
from invarlock.guards.scope import resolve_scope

torch.set_num_threads(1)

GUARDS = [SpectralGuard, VarianceGuard]


def run(guard: SpectralGuard | VarianceGuard, model: nn.Module, edit, context=None) -> dict:
    """prepare → edit → validate; every result must be strict JSON."""
    prep = guard.prepare(model, None, None, None)
    assert prep["ready"] is True, prep
    edit(model)
    out = guard.validate(model, None, context if context is not None else {})
    json.dumps(prep, allow_nan=False)
    json.dumps(out, allow_nan=False)
    return out


@pytest.mark.parametrize("model_name", ["gpt2", "llama"])
@pytest.mark.parametrize("cls", GUARDS)
def test_int8_passes_and_2bit_aborts(model_name: str, cls, request: pytest.FixtureRequest):
    model = request.getfixturevalue(model_name)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    int8 = run(cls(), model, lambda m: rtn_(m, 8))
    assert int8["passed"] is True and int8["action"] == "continue", int8["message"]
    model.load_state_dict(state)
    two_bit = run(cls(), model, lambda m: rtn_(m, 2))
    assert two_bit["passed"] is False and two_bit["action"] == "abort"
    assert two_bit["metrics"]["worst"][0]["name"] in two_bit["message"]


@pytest.mark.parametrize("cls", GUARDS)
def test_unedited_model_continues(cls, llama: LlamaForCausalLM) -> None:
    out = run(cls(), llama, lambda m: None)
    assert out["action"] == "continue"
    key = "max_rel_change" if cls is SpectralGuard else "max_ratio_change"
    assert out["metrics"][key] < 1e-5
    assert out["metrics"]["checked"] == 14  # 7 Linear weights in each of 2 LLaMA layers


def test_spectral_sigma_matches_svd_and_warm_start_is_cheap(gpt2: GPT2LMHeadModel) -> None:
    guard = SpectralGuard()
    prep = guard.prepare(gpt2, None, None, None)
    for name, sigma in guard.sigmas.items():
        exact = float(torch.linalg.svdvals(gpt2.get_parameter(name).detach())[0])
        assert sigma == pytest.approx(exact, rel=1e-4), name
    out = guard.validate(gpt2, None, {})
    assert out["metrics"]["steps"] <= 2 * prep["checked"] < prep["steps"]


def test_spectral_measures_a_known_scaling(gpt2: GPT2LMHeadModel) -> None:
    def scale_one(model: nn.Module) -> None:
        with torch.no_grad():
            model.transformer.h[1].attn.c_attn.weight.mul_(1.1)

    out = run(SpectralGuard(), gpt2, scale_one)
    assert out["action"] == "abort"
    worst = out["metrics"]["worst"][0]
    assert worst["name"] == "transformer.h.1.attn.c_attn.weight"
    assert worst["rel_change"] == pytest.approx(0.1, rel=1e-3)
    assert out["metrics"]["worst"][1]["rel_change"] < 1e-5
    assert "1 weights over the limit" in out["message"]


@pytest.mark.parametrize(("model_name", "module"), [("gpt2", "c_fc"), ("llama", "up_proj")])
def test_variance_uses_the_output_channel_axis(model_name: str, module: str, request) -> None:
    model = request.getfixturevalue(model_name)
    layer = model.transformer.h[0].mlp if model_name == "gpt2" else model.model.layers[0].mlp
    linear = getattr(layer, module)
    channel = 7

    def widen_channel(_: nn.Module) -> None:
        with torch.no_grad():
            if output_axis(linear) == 0:
                linear.weight[channel].mul_(1.5)
            else:
                linear.weight[:, channel].mul_(1.5)

    out = run(VarianceGuard(), model, widen_channel)
    worst = out["metrics"]["worst"][0]
    assert out["action"] == "abort"
    assert worst["name"].endswith(f"0.mlp.{module}.weight")
    assert worst["worst_channel"] == channel
    assert worst["worst_ratio"] == pytest.approx(1.5, rel=1e-5)
    assert worst["median_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert f"channel {channel} of" in out["message"]


def test_variance_reports_mean_shift(llama: LlamaForCausalLM) -> None:
    weight = llama.model.layers[1].self_attn.o_proj.weight
    std = float(weight[3].detach().std(correction=0))

    def shift_row(_: nn.Module) -> None:
        with torch.no_grad():
            weight[3].add_(0.5 * std)

    out = run(VarianceGuard(), llama, shift_row)
    assert out["metrics"]["max_ratio_change"] < 1e-5  # a shift keeps the spread
    assert out["metrics"]["max_mean_shift"] == pytest.approx(0.5, rel=1e-3)
    assert out["action"] == "abort"  # ... but moves the mean beyond the balanced band
    name = "model.layers.1.self_attn.o_proj.weight"
    assert f"channel 3 of {name!r} shifted its mean" in out["message"]


@pytest.mark.parametrize("cls", GUARDS)
def test_warn_band(cls, gpt2: GPT2LMHeadModel) -> None:
    options = (
        {"warn_rel_change": 1e-6, "max_rel_change": 0.5}
        if cls is SpectralGuard
        else {"warn_ratio_change": 1e-6, "max_ratio_change": 0.5}
    )
    out = run(cls(**options), gpt2, lambda m: rtn_(m, 8))
    assert out["passed"] is True and out["action"] == "warn"
    assert "limit 0.00%" in out["message"]


@pytest.mark.parametrize("cls", GUARDS)
def test_nonfinite_weight_aborts(cls, llama: LlamaForCausalLM) -> None:
    def poison(model: nn.Module) -> None:
        with torch.no_grad():
            model.model.layers[1].mlp.down_proj.weight[0, 0] = float("nan")

    out = run(cls(), llama, poison)
    assert out["action"] == "abort"
    assert out["message"] == "weight 'model.layers.1.mlp.down_proj.weight' holds non-finite values"


@pytest.mark.parametrize("cls", GUARDS)
def test_replaced_weight_with_new_shape_aborts(cls, gpt2: GPT2LMHeadModel) -> None:
    def shrink(model: nn.Module) -> None:
        module = model.transformer.h[0].attn.c_proj
        module.weight = nn.Parameter(module.weight.detach()[:, :32].clone())

    out = run(cls(), gpt2, shrink)
    assert out["action"] == "abort"
    assert (
        "'transformer.h.0.attn.c_proj.weight' changed shape (64, 64) → (64, 32)" in (out["message"])
    )


@pytest.mark.parametrize("cls", GUARDS)
def test_bfloat16_model(cls, llama: LlamaForCausalLM) -> None:
    llama.to(torch.bfloat16)
    out = run(cls(), llama, lambda m: rtn_(m, 8))
    assert out["action"] in ("continue", "warn")
    assert out["metrics"]["checked"] == 14


def test_default_scope_is_the_block_linears(gpt2, llama) -> None:
    scope = resolve_scope(gpt2, (), ())
    assert scope.container == "transformer.h"
    assert [w.name for w in scope.weights[:4]] == [
        "transformer.h.0.attn.c_attn.weight",
        "transformer.h.0.attn.c_proj.weight",
        "transformer.h.0.mlp.c_fc.weight",
        "transformer.h.0.mlp.c_proj.weight",
    ]
    assert {w.out_axis for w in scope.weights} == {1}
    scope = resolve_scope(llama, (), ())
    assert scope.container == "model.layers" and len(scope.weights) == 14
    assert {w.out_axis for w in scope.weights} == {0}
    assert not any(w.name.startswith("lm_head") for w in scope.weights)


@pytest.mark.parametrize("cls", GUARDS)
def test_include_and_exclude_patterns(cls, llama: LlamaForCausalLM) -> None:
    guard = cls(include=["*.mlp.*", "lm_head.weight"], exclude=["*.down_proj.*"])
    prep = guard.prepare(llama, None, None, None)
    assert prep["checked"] == 5  # gate/up of 2 layers + lm_head
    out = guard.validate(llama, None, {})
    names = {row["name"] for row in out["metrics"]["worst"]}
    assert "lm_head.weight" in names and not any("down_proj" in n for n in names)


@pytest.mark.parametrize("cls", GUARDS)
def test_include_matching_nothing_is_not_ready(cls, gpt2: GPT2LMHeadModel) -> None:
    prep = cls(include=["*.q_proj.*"]).prepare(gpt2, None, None, None)
    assert prep["ready"] is False
    expected = "include pattern '*.q_proj.*' matches no Linear/Conv1D/Embedding weight"
    assert expected in prep["message"]


def test_model_without_module_list_checks_every_linear() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    prep = SpectralGuard().prepare(model, None, None, None)
    assert prep["checked"] == 2 and prep["container"] is None
    assert prep["warnings"] == ["model has no nn.ModuleList; checking every Linear/Conv1D weight"]


def edit_summary(*modules: str) -> EditSummary:
    """The summary of an edit that wrote the weight of each of ``modules``."""
    fields = {
        "module_type": "Linear", "shape": [1], "numel": 1, "dtype": "float32", "bits": 8,
        "scheme": "sym/channel", "out_axis": 0, "scale_min": 0.0, "scale_max": 0.0,
        "rel_error": None, "max_error": None,
    }  # fmt: skip
    layers = tuple(LayerStats(name=m, param=f"{m}.weight", **fields) for m in modules)
    return EditSummary("quant_rtn", {}, layers)


@pytest.mark.parametrize("cls", GUARDS)
def test_edit_context_reports_unchecked_layers(cls, gpt2: GPT2LMHeadModel) -> None:
    edit = edit_summary("transformer.h.0.mlp.c_fc", "lm_head")
    guard = cls()
    out = run(guard, gpt2, lambda m: rtn_(m, 8), {"edit": edit})
    assert out["metrics"]["edited_checked"] == 1
    assert out["metrics"]["edited_unchecked"] == ["lm_head"]
    with pytest.raises(TypeError, match=r"context\['edit'\] must be the EditSummary.*got dict"):
        guard.validate(gpt2, None, {"edit": {"layers": ["transformer.h.0.mlp.c_fc"]}})


@pytest.mark.parametrize("cls", GUARDS)
def test_validate_before_prepare_raises(cls, gpt2: GPT2LMHeadModel) -> None:
    with pytest.raises(RuntimeError, match=rf"{cls.name} guard: validate\(\) called before"):
        cls().validate(gpt2, None, {})


@pytest.mark.parametrize(
    ("cls", "options", "error", "pattern"),
    [
        (SpectralGuard, {"max_rel_change": 0.002}, ValueError, "warn_rel_change: must not exceed"),
        (SpectralGuard, {"max_rel_change": -1}, ValueError, "max_rel_change: must be a number > 0"),
        (SpectralGuard, {"warn_rel_change": "high"}, TypeError, "warn_rel_change: must be a n"),
        (SpectralGuard, {"iterations": 0}, ValueError, "iterations: must be an integer >= 1"),
        (SpectralGuard, {"iterations": 2.5}, TypeError, "iterations: must be an integer"),
        (SpectralGuard, {"tol": 1.0}, ValueError, r"tol: must be a number in \(0, 1\), got 1.0"),
        (SpectralGuard, {"include": [3]}, TypeError, r"include\[0\]: must be a string, got 3"),
        (VarianceGuard, {"warn_ratio_change": 0.5}, ValueError, "warn_ratio_change: must not ex"),
        (VarianceGuard, {"max_ratio_change": True}, TypeError, "max_ratio_change: must be a n"),
        (VarianceGuard, {"source": "grads"}, ValueError, "source: must be one of weights"),
        (VarianceGuard, {"tier": "lax"}, ValueError, "tier: must be one of conservative"),
        (VarianceGuard, {"exclude": {"a": 1}}, TypeError, "exclude: must be a list"),
    ],
)
def test_bad_options(cls, options: dict, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        cls(**options)


def test_single_pattern_string_is_accepted() -> None:
    assert SpectralGuard(include="*.mlp.*").include == ("*.mlp.*",)
