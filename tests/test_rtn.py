"""quant_rtn and noop: every option against a float64 reference, scope, ties, errors.

The reference below is the specification written as plain float64 torch code; the edit must
agree with it except where the reference itself sits on a rounding tie (there float32 and
float64 may round either way, by one grid step).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from invarlock.edits import EDITS, EditConfigError, get_edit
from invarlock.edits.config import QuantSpec
from invarlock.edits.kernels import quantize_

TINY = torch.finfo(torch.float32).tiny
TIE_WINDOW = 1e-3  # |x - (k + 0.5)| below this counts as a tie


# --------------------------------------------------------------------------- reference


def _near_half(values: torch.Tensor) -> torch.Tensor:
    return ((values - values.floor()) - 0.5).abs() < TIE_WINDOW


def reference_rtn(weight: torch.Tensor, out_axis: int, spec: QuantSpec):
    """Float64 RTN of ``weight``: ``(result, ties, step)``, all shaped like ``weight``.

    ``ties`` is 1 where ``w / scale`` sits on a rounding tie and 2 where the group's zero point
    does (clipping both sides symmetrically makes that systematic: ``zp = qmax / 2``);
    ``step`` is the scale that applies to each element.
    """
    matrix = weight.double() if out_axis == 0 else weight.double().t()
    n_in = matrix.shape[1]
    group = spec.group_size if spec.group_size and spec.group_size < n_in else n_in
    result, step = torch.empty_like(matrix), torch.empty_like(matrix)
    ties = torch.zeros_like(matrix, dtype=torch.uint8)
    qmax = spec.qmax
    for start in range(0, n_in, group):
        block = matrix[:, start : start + group]
        magnitude = block.abs()
        percentile = None
        if spec.clamp_percentile is not None:
            percentile = torch.quantile(magnitude, spec.clamp_percentile / 100, dim=1, keepdim=True)
        if spec.symmetric:
            top = magnitude.amax(dim=1, keepdim=True)
            if spec.clamp_max_ratio is not None:
                top = top * spec.clamp_max_ratio
            if percentile is not None:
                top = percentile
            scale = top / qmax + TINY
            x = block / scale
            quantized = x.round().clamp(-qmax, qmax) * scale
            tie = _near_half(x).to(torch.uint8)
        else:
            high = block.amax(dim=1, keepdim=True).clamp(min=0)
            low = block.amin(dim=1, keepdim=True).clamp(max=0)
            if spec.clamp_max_ratio is not None:
                high, low = high * spec.clamp_max_ratio, low * spec.clamp_max_ratio
            if percentile is not None:
                high, low = torch.minimum(high, percentile), torch.maximum(low, -percentile)
            scale = (high - low) / qmax + TINY
            zero_exact = -low / scale
            zero = zero_exact.round().clamp(0, qmax)
            x = block / scale
            q = (x.round() + zero).clamp(0, qmax)
            quantized = (q - zero) * scale
            tie = torch.where(_near_half(zero_exact), 2, _near_half(x).to(torch.uint8))
        result[:, start : start + group] = quantized
        step[:, start : start + group] = scale
        ties[:, start : start + group] = tie
    if out_axis == 1:
        result, ties, step = result.t(), ties.t(), step.t()
    return result, ties, step


def assert_matches_reference(
    original: torch.Tensor, edited: torch.Tensor, out_axis: int, spec: QuantSpec
) -> None:
    expected, ties, step = reference_rtn(original, out_axis, spec)
    expected = expected.to(original.dtype).double()
    got = edited.double()
    eps = torch.finfo(original.dtype).eps
    exact = (got - expected).abs() <= 2 * eps * expected.abs()
    one_step = (got - expected).abs() <= step * (1 + 1e-3) + 2 * eps * expected.abs()
    bad = ~(exact | ((ties > 0) & one_step))
    assert not bad.any(), (
        f"{int(bad.sum())} of {bad.numel()} values differ from the reference, e.g."
        f" got {got[bad][:3].tolist()} expected {expected[bad][:3].tolist()}"
    )
    element_ties = int((~exact & (ties == 1)).sum())
    assert element_ties <= max(2, bad.numel() // 100), "too many tie disagreements"


# --------------------------------------------------------------------------- helpers


def load(model_dir: Path, dtype: torch.dtype | None = None):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()


def weights(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def run(model, **params):
    edit = get_edit("quant_rtn")
    config = edit.parse(params)
    return edit.apply(model, config)


GPT2_BLOCK = {
    f"transformer.h.{i}.{m}"
    for i in range(3)
    for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
}
LLAMA_BLOCK = {
    f"model.layers.{i}.{m}"
    for i in range(3)
    for m in (
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.o_proj",
        "mlp.gate_proj",
        "mlp.up_proj",
        "mlp.down_proj",
    )
}

# Every option, alone and combined. group_size 48 leaves a partial last group on every tiny
# weight (inputs of 64, 176 and 256); 1000 is wider than any input: one group per channel.
CASES = [
    {},
    {"bits": 4},
    {"bits": 2},
    {"symmetric": False},
    {"bits": 4, "symmetric": False},
    {"bits": 4, "group_size": 48},
    {"bits": 3, "symmetric": False, "group_size": 48},
    {"group_size": 48, "clamp_max_ratio": 0.7},
    {"bits": 4, "clamp_max_ratio": 0.5},
    {"bits": 4, "symmetric": False, "clamp_max_ratio": 0.8},
    {"clamp_percentile": 99.0},
    {"bits": 4, "symmetric": False, "group_size": 48, "clamp_percentile": 95.0},
    {"group_size": 1000},
]


def _spec(params: dict) -> QuantSpec:
    return get_edit("quant_rtn").parse(params).spec


# --------------------------------------------------------------------------- semantics


@pytest.mark.parametrize("family", ["gpt2", "llama"])
@pytest.mark.parametrize(
    "params", CASES, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) or "default"
)
def test_every_option_matches_the_reference(family, params, tiny_gpt2_dir, tiny_llama_dir):
    model = load(tiny_gpt2_dir if family == "gpt2" else tiny_llama_dir)
    before = weights(model)
    result = run(model, **params)
    spec = _spec(params)
    assert len(result.layers) == (12 if family == "gpt2" else 21)
    for layer in result.layers:
        edited = model.get_parameter(layer.param).detach()
        assert_matches_reference(before[layer.param], edited, layer.out_axis, spec)
        _, _, step = reference_rtn(before[layer.param], layer.out_axis, spec)
        assert layer.scale_min == pytest.approx(float(step.min()), rel=1e-6)
        assert layer.scale_max == pytest.approx(float(step.max()), rel=1e-6)
        assert layer.scheme == spec.scheme and layer.bits == spec.bits


def test_conv1d_scales_run_along_the_output_columns(tiny_gpt2_dir):
    model = load(tiny_gpt2_dir)
    conv = model.transformer.h[0].mlp.c_fc  # Conv1D, weight (in=64, out=256)
    with torch.no_grad():
        conv.weight[:, 5] *= 1000.0  # one output channel far larger than the rest
    before = conv.weight.detach().clone()
    result = run(model, include=["transformer.h.0.mlp.c_fc"])
    assert [layer.out_axis for layer in result.layers] == [1]
    spec = QuantSpec()
    assert_matches_reference(before, conv.weight.detach(), 1, spec)
    # Scaling per input row instead would spread the big column's scale over every row.
    wrong, _, _ = reference_rtn(before, 0, spec)
    assert not torch.allclose(conv.weight.detach().double(), wrong, rtol=1e-4, atol=0)
    others = torch.cat([before[:, :5], before[:, 6:]], dim=1)
    edited = torch.cat([conv.weight[:, :5], conv.weight[:, 6:]], dim=1).detach()
    assert float((edited - others).abs().max()) <= float(others.abs().amax(0).max()) / 254 * 1.01


def test_zero_channel_stays_zero_and_finite(tiny_llama_dir):
    model = load(tiny_llama_dir)
    proj = model.model.layers[0].mlp.down_proj
    with torch.no_grad():
        proj.weight[7] = 0.0
    for params in ({}, {"symmetric": False}, {"group_size": 48, "clamp_percentile": 90.0}):
        run(model, include=["model.layers.0.mlp.down_proj"], **params)
        assert torch.isfinite(proj.weight).all()
        assert torch.equal(proj.weight[7], torch.zeros_like(proj.weight[7]))


@pytest.mark.parametrize("params", [{}, {"bits": 4, "symmetric": False, "group_size": 48}])
def test_blocking_and_stats_do_not_change_the_result(params, tiny_gpt2_dir, tiny_llama_dir):
    """Tiny weights fit one block; force many (with a partial last one) and compare bitwise."""
    spec = _spec(params)
    cases = [
        (load(tiny_llama_dir).model.layers[0].mlp.down_proj.weight, 0),
        (load(tiny_gpt2_dir).transformer.h[0].mlp.c_fc.weight, 1),
        (load(tiny_gpt2_dir).transformer.h[0].mlp.c_proj.weight.to(torch.bfloat16), 1),
    ]
    for weight, out_axis in cases:
        one_block = weight.detach().clone()
        quantize_(one_block, out_axis, spec)
        for block_bytes, stats in ((700, False), (700, True), (1 << 20, True)):
            other = weight.detach().clone()
            quantize_(other, out_axis, spec, block_bytes=block_bytes, stats=stats)
            assert torch.equal(other.view(torch.uint8), one_block.view(torch.uint8))


def test_two_runs_are_bitwise_identical(tiny_gpt2_dir, tiny_llama_dir):
    for model_dir in (tiny_gpt2_dir, tiny_llama_dir):
        first, second = load(model_dir), load(model_dir)
        run(first, bits=4, group_size=48)
        run(second, bits=4, group_size=48)
        for (name, a), (_, b) in zip(
            first.state_dict().items(), second.state_dict().items(), strict=True
        ):
            assert torch.equal(a.view(torch.uint8), b.view(torch.uint8)), name


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_keeps_dtype_and_matches_reference(dtype, tiny_llama_dir, tiny_gpt2_dir):
    for model_dir in (tiny_llama_dir, tiny_gpt2_dir):
        model = load(model_dir, dtype=dtype)
        before = weights(model)
        result = run(model, bits=4, group_size=48, stats=True)
        for layer in result.layers:
            edited = model.get_parameter(layer.param).detach()
            assert edited.dtype == dtype and layer.dtype == str(dtype).removeprefix("torch.")
            assert_matches_reference(
                before[layer.param], edited, layer.out_axis, _spec({"bits": 4, "group_size": 48})
            )
        logits = model(torch.arange(12)[None]).logits
        assert logits.dtype == dtype and torch.isfinite(logits).all()


def test_stats_are_exact_and_optional(tiny_llama_dir):
    model = load(tiny_llama_dir)
    before = weights(model)
    result = run(model, bits=4, stats=True)
    for layer in result.layers:
        original = before[layer.param].double()
        error = model.get_parameter(layer.param).detach().double() - original
        assert layer.rel_error == pytest.approx(float(error.norm() / original.norm()), rel=1e-6)
        assert layer.max_error == pytest.approx(float(error.abs().max()), rel=1e-6)
        assert 0 < layer.rel_error < 0.2
    quiet = run(load(tiny_llama_dir), bits=4, stats=False)
    assert all(layer.rel_error is None and layer.max_error is None for layer in quiet.layers)


# --------------------------------------------------------------------------- scope


def test_default_scope_is_exactly_the_block_projections(tiny_gpt2_dir, tiny_llama_dir):
    for model_dir, modules in ((tiny_gpt2_dir, GPT2_BLOCK), (tiny_llama_dir, LLAMA_BLOCK)):
        model = load(model_dir)
        edit = get_edit("quant_rtn")
        config = edit.parse({})
        expected = {f"{module}.weight" for module in modules}
        assert set(edit.targets(model, config)) == expected
        before = weights(model)
        result = edit.apply(model, config)
        assert {layer.name for layer in result.layers} == modules
        assert result.tied == [] and result.skipped == []
        for name, param in model.named_parameters():
            changed = not torch.equal(param.detach(), before[name])
            assert changed == (name in expected), name


def test_include_and_exclude_patterns(tiny_llama_dir):
    model = load(tiny_llama_dir)
    before = weights(model)
    result = run(
        model, include=["model.layers.1.*", "model.embed_tokens"], exclude=["*.k_proj", "*.v_proj"]
    )
    assert {layer.name for layer in result.layers} == {
        "model.layers.1.self_attn.q_proj",
        "model.layers.1.self_attn.o_proj",
        "model.layers.1.mlp.gate_proj",
        "model.layers.1.mlp.up_proj",
        "model.layers.1.mlp.down_proj",
    }
    assert result.skipped == [
        "model.embed_tokens: Embedding is not quantized (only Linear and Conv1D)",
        "model.layers.1.self_attn.k_proj: excluded by '*.k_proj'",
        "model.layers.1.self_attn.v_proj: excluded by '*.v_proj'",
    ]
    assert torch.equal(
        model.model.layers[1].self_attn.k_proj.weight,
        before["model.layers.1.self_attn.k_proj.weight"],
    )
    assert torch.equal(
        model.model.layers[0].mlp.up_proj.weight, before["model.layers.0.mlp.up_proj.weight"]
    )


def test_tied_lm_head_is_quantized_once(tiny_gpt2_dir):
    model = load(tiny_gpt2_dir)
    assert model.lm_head.weight is model.transformer.wte.weight
    original = model.lm_head.weight.detach().clone()
    edit = get_edit("quant_rtn")
    # clamp_max_ratio makes a second pass visible: it would shrink the range again
    config = edit.parse({"include": ["lm_head", "transformer.wte"], "clamp_max_ratio": 0.5})
    assert edit.targets(model, config) == ["transformer.wte.weight"]
    result = edit.apply(model, config)
    assert result.tied == [["transformer.wte.weight", "lm_head.weight"]]
    assert [layer.name for layer in result.layers] == ["lm_head"]
    assert result.layers[0].tied_to == ["transformer.wte.weight"]
    assert result.skipped == [
        "transformer.wte: Embedding is not quantized (only Linear and Conv1D)"
    ]
    assert model.lm_head.weight is model.transformer.wte.weight
    assert_matches_reference(
        original, model.lm_head.weight.detach(), 0, QuantSpec(clamp_max_ratio=0.5)
    )


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bits": 9}, "edit.bits: must be an integer 2..8, got 9"),
        ({"bits": 1}, "edit.bits: must be an integer 2..8, got 1"),
        ({"bits": True}, "edit.bits: must be an integer, got True"),
        ({"bits": "8"}, "edit.bits: must be an integer, got '8'"),
        ({"plan": {"bits": 9}}, "edit.plan.bits: must be an integer 2..8, got 9"),
        ({"group_size": 0}, "edit.group_size: must be an integer >= 1, got 0"),
        (
            {"clamp_max_ratio": 0.5, "clamp_percentile": 99},
            "edit.clamp_percentile: cannot be combined with edit.clamp_max_ratio",
        ),
        ({"clamp_max_ratio": 1.5}, "edit.clamp_max_ratio: must be a number in (0, 1], got 1.5"),
        ({"clamp_percentile": 0}, "edit.clamp_percentile: must be a number in (0, 100], got 0"),
        ({"symmetric": "yes"}, "edit.symmetric: must be true or false, got 'yes'"),
        ({"include": {"a": 1}}, "edit.include: must be a list (list[str]), got {'a': 1}"),
        ({"include": []}, "edit.include: lists no pattern"),
        ({"exclude": [""]}, "edit.exclude[0]: must be a non-empty pattern"),
        (
            {"seeds": 42},
            "edit.seeds: unknown key for quant_rtn; accepted keys: bits, bitwidth, clamp_max_ratio,"
            " clamp_percentile, clamp_ratio, exclude, grid, group_size, include, scope, seed,"
            " stats, symmetric",
        ),
        ({"bits": 8, "bitwidth": 4}, "edit.bitwidth: cannot be combined with edit.bits"),
        (
            {"clamp_ratio": 0.01, "clamp_percentile": 99},
            "edit.clamp_ratio: cannot be combined with edit.clamp_percentile",
        ),
        ({"clamp_ratio": 0.6}, "edit.clamp_ratio: must be a number in [0, 0.5], got 0.6"),
        ({"scope": "mlp"}, "edit.scope: must be one of all, ffn, attn, got 'mlp'"),
        ({"bits": 8, "plan": {"bits": 4}}, "edit.plan.bits: also given as edit.bits"),
        ({"plan": [1]}, "edit.plan: must be a mapping, got list"),
    ],
)
def test_bad_parameters_name_the_key(params, message):
    with pytest.raises(EditConfigError) as caught:
        get_edit("quant_rtn").parse(params)
    assert str(caught.value).startswith(message)


def test_one_pattern_needs_no_list_and_numbers_are_coerced():
    """The option schema shared with the guards: a lone pattern is a list of one; a float
    written ``1e-1`` (a string to YAML 1.1) is a number."""
    edit = get_edit("quant_rtn")
    assert edit.parse({"include": "lm_head"}).include == ("lm_head",)
    assert edit.parse({"clamp_max_ratio": "9.5e-1"}).spec.clamp_max_ratio == 0.95
    with pytest.raises(EditConfigError, match=r"edit.clamp_max_ratio: must be a number, got 'abc'"):
        edit.parse({"clamp_max_ratio": "abc"})


def test_parameters_flat_or_under_plan_resolve_alike():
    edit = get_edit("quant_rtn")
    flat = edit.parse({"bits": 4, "symmetric": False, "group_size": 128})
    assert edit.parse({"plan": {"bits": 4, "symmetric": False, "group_size": 128}}) == flat
    assert flat.to_dict() == {
        "bits": 4,
        "symmetric": False,
        "group_size": 128,
        "clamp_max_ratio": None,
        "clamp_percentile": None,
        "grid": None,
        "scope": "all",
        "seed": None,
        "include": None,
        "exclude": [],
        "stats": True,
    }
    assert edit.parse(None) == edit.parse({}) == edit.parse({"plan": None})


def test_upstream_keys_keep_their_upstream_meaning(tiny_gpt2_dir, tiny_llama_dir):
    """Configs written for the published upstream carry over: bitwidth, clamp_ratio as the
    fraction of outliers clipped, scope, seed."""
    edit = get_edit("quant_rtn")
    upstream = edit.parse({"plan": {"bitwidth": 8, "clamp_ratio": 0.01, "seed": 42}})
    ours = edit.parse({"bits": 8, "clamp_percentile": 99.0, "seed": 42})
    assert upstream == ours
    assert edit.parse({"clamp_ratio": 0}).spec.clamp_percentile is None  # 0: clipping off
    for model_dir, attn, ffn in (
        (tiny_gpt2_dir, {"attn.c_attn", "attn.c_proj"}, {"mlp.c_fc", "mlp.c_proj"}),
        (
            tiny_llama_dir,
            {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"},
            {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"},
        ),
    ):
        model = load(model_dir)
        for scope, expected in (("attn", attn), ("ffn", ffn), ("all", attn | ffn)):
            names = edit.targets(model, edit.parse({"scope": scope}))
            assert {n.split(".", 3)[-1].removesuffix(".weight") for n in names} == expected


def test_patterns_must_match_a_module(tiny_gpt2_dir):
    model = load(tiny_gpt2_dir)
    edit = get_edit("quant_rtn")
    for key in ("include", "exclude"):
        config = edit.parse({key: ["transformer.h.*.attn.q_proj"]})
        with pytest.raises(
            EditConfigError,
            match=rf"edit.{key}: pattern 'transformer.h.\*.attn.q_proj' matches no module",
        ):
            edit.targets(model, config)


def test_an_empty_selection_is_an_error(tiny_llama_dir):
    edit = get_edit("quant_rtn")
    model = load(tiny_llama_dir)
    config = edit.parse({"include": ["model.layers.0.mlp.*"], "exclude": ["*_proj"]})
    with pytest.raises(EditConfigError) as caught:
        edit.targets(model, config)
    assert str(caught.value).startswith(
        "edit.include: quant_rtn selects no weight of LlamaForCausalLM"
        " (model.layers.0.mlp.gate_proj: excluded by '*_proj'; "
    )
    with pytest.raises(EditConfigError, match=r"edit.include: .*Embedding is not quantized"):
        edit.apply(model, edit.parse({"include": ["model.embed_tokens"]}))


@pytest.mark.parametrize(
    "params", [{}, {"symmetric": False, "group_size": 48}, {"clamp_percentile": 99.0}]
)
def test_non_finite_weight_is_reported_by_name(params, tiny_llama_dir):
    model = load(tiny_llama_dir)
    with torch.no_grad():
        model.model.layers[2].mlp.up_proj.weight[3, 4] = math.nan
    with pytest.raises(ValueError, match=r"model.layers.2.mlp.up_proj.weight: the weight contains"):
        run(model, **params)


def test_unknown_edit_lists_the_known_ones():
    with pytest.raises(
        EditConfigError, match=r"edit.name: unknown edit 'gptq'; known edits: noop, quant_rtn"
    ):
        get_edit("gptq")


# --------------------------------------------------------------------------- noop, report, listing


def test_noop_changes_nothing_and_takes_no_parameters(tiny_gpt2_dir):
    model = load(tiny_gpt2_dir)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    noop = get_edit("noop")
    config = noop.parse({"plan": {}})
    assert noop.targets(model, config) == []
    result = noop.apply(model, config)
    assert result.layers == [] and result.name == "noop"
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor.view(torch.uint8), before[name].view(torch.uint8)), name
    with pytest.raises(
        EditConfigError, match=r"edit.bits: unknown key for noop; accepted keys: none"
    ):
        noop.parse({"bits": 8})


def test_result_serializes_for_the_report(tiny_gpt2_dir):
    result = run(load(tiny_gpt2_dir), bits=4, stats=True, include=["lm_head", "transformer.h.0.*"])
    data = json.loads(json.dumps(result.to_dict()))
    assert data["name"] == "quant_rtn" and data["params"]["bits"] == 4
    assert data["numel"] == sum(layer["numel"] for layer in data["layers"]) > 0
    assert data["tied"] == [["transformer.wte.weight", "lm_head.weight"]]
    first = data["layers"][0]
    assert first["name"] == "transformer.h.0.attn.c_attn" and first["shape"] == [64, 192]
    assert first["module_type"] == "Conv1D" and first["scheme"] == "sym/channel"
    assert 0 < first["rel_error"] < 0.2 and first["max_error"] > 0


def test_listing_is_torch_free():
    assert set(EDITS) == {"quant_rtn", "noop"}
    assert set(EDITS["quant_rtn"].parameters) == {
        "bits",
        "bitwidth",
        "symmetric",
        "group_size",
        "clamp_max_ratio",
        "clamp_percentile",
        "clamp_ratio",
        "include",
        "exclude",
        "scope",
        "seed",
        "stats",
        "grid",
    }
    code = (
        "import sys, invarlock.edits as e\n"
        "e.get_edit('quant_rtn').parse({'plan': {'bits': 4}})\n"
        "e.get_edit('noop')\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')]\n"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
