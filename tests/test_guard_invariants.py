"""The ``invariants`` guard on real tiny GPT-2 and LLaMA models built from configs."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from torch import nn
from transformers import GPT2LMHeadModel, LlamaForCausalLM

from invarlock.core.api import Guard
from invarlock.core.options import constructor_options
from invarlock.guards import BUILTIN_GUARDS, InvariantsGuard
from invarlock.guards.finite import nonfinite_tensors

torch.set_num_threads(1)


class DescribingAdapter:
    """The smallest real adapter: describe() only, declaring the given tie groups."""

    def __init__(self, tied: list[list[str]]) -> None:
        self.tied = tied

    def describe(self, model: nn.Module) -> dict:
        return {"model_type": "test", "tied_weights": self.tied}


def prepared(model: nn.Module, **options: bool) -> InvariantsGuard:
    guard = InvariantsGuard(**options)
    assert guard.prepare(model, None, None, None)["ready"] is True
    return guard


@pytest.mark.parametrize("model_name", ["gpt2", "llama"])
def test_unedited_model_passes(model_name: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(model_name)
    guard = InvariantsGuard()
    prep = guard.prepare(model, None, None, {})
    out = guard.validate(model, None, {})
    assert out["passed"] is True and out["action"] == "continue"
    assert out["metrics"]["parameters"] == sum(p.numel() for p in model.parameters())
    assert out["metrics"]["finite_checked"] > 10
    assert prep["warnings"] == []  # LLaMA declares lm_head ties but its config unties them
    json.dumps(prep, allow_nan=False)
    json.dumps(out, allow_nan=False)


def test_gpt2_tie_group_is_captured(gpt2: GPT2LMHeadModel) -> None:
    prep = InvariantsGuard().prepare(gpt2, None, None, None)
    assert prep["tie_groups"] == [["transformer.wte.weight", "lm_head.weight"]]


def test_nan_in_one_weight_aborts_and_names_it(gpt2: GPT2LMHeadModel) -> None:
    guard = prepared(gpt2)
    with torch.no_grad():
        gpt2.transformer.h[1].mlp.c_fc.weight[3, 5] = float("nan")
    out = guard.validate(gpt2, None, {})
    assert out["passed"] is False and out["action"] == "abort"
    assert "'transformer.h.1.mlp.c_fc.weight' became non-finite" in out["message"]
    assert out["metrics"]["violations"] == [
        {
            "check": "nonfinite",
            "name": "transformer.h.1.mlp.c_fc.weight",
            "detail": "'transformer.h.1.mlp.c_fc.weight' became non-finite",
        }
    ]


def test_inf_in_half_precision_model_is_found(llama: LlamaForCausalLM) -> None:
    llama.to(torch.float16)
    guard = prepared(llama)
    with torch.no_grad():
        llama.model.layers[0].self_attn.k_proj.weight[0, 0] = float("inf")
    out = guard.validate(llama, None, {})
    assert out["action"] == "abort"
    assert "model.layers.0.self_attn.k_proj.weight" in out["message"]


def test_huge_finite_values_are_not_a_false_alarm(gpt2: GPT2LMHeadModel) -> None:
    guard = prepared(gpt2)
    with torch.no_grad():  # the float32 sum of this row overflows; the values are finite
        gpt2.transformer.h[0].attn.c_proj.weight[0].fill_(3e38)
    assert guard.validate(gpt2, None, {})["action"] == "continue"
    with torch.no_grad():
        gpt2.transformer.h[0].attn.c_proj.weight[1, 0] = float("nan")
    out = guard.validate(gpt2, None, {})
    assert out["action"] == "abort" and "transformer.h.0.attn.c_proj.weight" in out["message"]


def test_nonfinite_before_edit_warns_and_only_new_ones_fail(gpt2: GPT2LMHeadModel) -> None:
    with torch.no_grad():
        gpt2.transformer.wpe.weight[0, 0] = float("nan")
    guard = InvariantsGuard()
    prep = guard.prepare(gpt2, None, None, None)
    assert prep["ready"] is True and prep["nonfinite"] == ["transformer.wpe.weight"]
    assert "already holds non-finite values" in prep["warnings"][0]
    out = guard.validate(gpt2, None, {})
    assert out["action"] == "continue"
    assert "transformer.wpe.weight" in out["warnings"][0]
    with torch.no_grad():
        gpt2.transformer.ln_f.bias[2] = float("-inf")
    out = guard.validate(gpt2, None, {})
    assert out["action"] == "abort"
    assert [v["name"] for v in out["metrics"]["violations"]] == ["transformer.ln_f.bias"]


def test_check_finite_off_ignores_nan(gpt2: GPT2LMHeadModel) -> None:
    guard = prepared(gpt2, check_finite=False)
    with torch.no_grad():
        gpt2.transformer.h[0].ln_1.weight[0] = float("nan")
    out = guard.validate(gpt2, None, {})
    assert out["action"] == "continue" and "finite_checked" not in out["metrics"]


def test_buffer_shape_change_aborts(llama: LlamaForCausalLM) -> None:
    guard = prepared(llama)
    llama.model.rotary_emb.inv_freq = torch.ones(4)
    out = guard.validate(llama, None, {})
    assert out["action"] == "abort"
    assert "buffer 'model.rotary_emb.inv_freq' changed shape (8,) → (4,)" in out["message"]


def test_buffers_ignored_when_check_buffers_is_off(llama: LlamaForCausalLM) -> None:
    guard = prepared(llama, check_buffers=False)
    llama.model.rotary_emb.inv_freq = torch.full((4,), float("nan"))
    assert guard.validate(llama, None, {})["action"] == "continue"


def test_untied_weights_abort(gpt2: GPT2LMHeadModel) -> None:
    guard = prepared(gpt2)
    gpt2.lm_head.weight = nn.Parameter(gpt2.lm_head.weight.detach().clone())
    out = guard.validate(gpt2, None, {})
    assert out["action"] == "abort"
    checks = {v["check"] for v in out["metrics"]["violations"]}
    assert {"untied", "parameter_count"} <= checks
    assert (
        "['transformer.wte.weight', 'lm_head.weight'] no longer share storage" in (out["message"])
    )


def test_dtype_and_device_metadata_are_checked(gpt2: GPT2LMHeadModel) -> None:
    guard = prepared(gpt2)
    gpt2.transformer.wpe.weight.data = gpt2.transformer.wpe.weight.data.half()
    out = guard.validate(gpt2, None, {})
    assert out["action"] == "abort"
    assert (
        "'transformer.wpe.weight' changed dtype torch.float32 → torch.float16" in (out["message"])
    )


def test_module_class_change_aborts_unless_structure_check_is_off(
    gpt2: GPT2LMHeadModel,
) -> None:
    strict, lenient = prepared(gpt2), prepared(gpt2, check_structure=False)
    gpt2.transformer.h[0].mlp.act = nn.ReLU()
    out = strict.validate(gpt2, None, {})
    assert out["action"] == "abort"
    assert (
        "module 'transformer.h.0.mlp.act' changed class NewGELUActivation → ReLU"
        in (out["message"])
    )
    assert lenient.validate(gpt2, None, {})["action"] == "continue"


def test_added_parameter_is_reported(gpt2: GPT2LMHeadModel) -> None:
    guard = prepared(gpt2)
    gpt2.transformer.h[0].attn.register_parameter("extra", nn.Parameter(torch.zeros(3)))
    out = guard.validate(gpt2, None, {})
    details = [v["detail"] for v in out["metrics"]["violations"]]
    assert "new parameter 'transformer.h.0.attn.extra' appeared" in details
    assert "parameter count changed" in " ".join(details)


def test_declared_ties_that_do_not_hold_are_warned(llama: LlamaForCausalLM) -> None:
    adapter = DescribingAdapter([["lm_head.weight", "model.embed_tokens.weight"]])
    prep = InvariantsGuard().prepare(llama, adapter, None, None)
    assert prep["ready"] is True
    assert prep["warnings"] == [
        "declared tied weights ['lm_head.weight', 'model.embed_tokens.weight'] do not share "
        "storage; not checked"
    ]
    prep = InvariantsGuard().prepare(llama, DescribingAdapter([["nope.weight"]]), None, None)
    assert prep["warnings"] == ["declared tied weight 'nope.weight' is not a parameter"]


def test_validate_before_prepare_raises(gpt2: GPT2LMHeadModel) -> None:
    with pytest.raises(RuntimeError, match=r"invariants guard: validate\(\) called before"):
        InvariantsGuard().validate(gpt2, None, {})


@pytest.mark.parametrize("option", ["check_buffers", "check_finite", "check_structure"])
def test_bad_options_name_the_option(option: str) -> None:
    with pytest.raises(TypeError, match=f"invariants.{option}: must be true or false"):
        InvariantsGuard(**{option: "yes"})


def test_policy_must_be_a_mapping(gpt2: GPT2LMHeadModel) -> None:
    with pytest.raises(TypeError, match="policy must be a mapping"):
        InvariantsGuard().prepare(gpt2, None, None, ["check_finite"])


def test_builtin_guards_construct_from_defaults_and_document_options() -> None:
    assert [cls.name for cls in BUILTIN_GUARDS] == ["invariants", "spectral", "rmt", "variance"]
    for cls in BUILTIN_GUARDS:
        guard = cls()
        assert isinstance(guard, Guard)
        doc = cls.__doc__ or ""
        assert doc.splitlines()[0].strip()
        names = [name for name in inspect.signature(cls.__init__).parameters if name != "self"]
        options = constructor_options(cls)  # the declaration --explain shows
        assert [option.name for option in options] == names
        for option in options:
            assert option.help, f"{cls.__name__} does not document {option.name!r}"


def test_guards_package_does_not_import_torch() -> None:
    code = (
        "import sys, invarlock.guards, invarlock.guards.invariants, "
        "invarlock.guards.spectral, invarlock.guards.rmt, invarlock.guards.variance\n"
        "[cls() for cls in invarlock.guards.BUILTIN_GUARDS]\n"
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
        "assert not heavy, heavy"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr


def test_nonfinite_tensors_handles_every_dtype() -> None:
    finite = torch.ones(5)
    named = [
        ("ints", torch.arange(4)),
        ("flags", torch.ones(3, dtype=torch.bool)),
        ("empty", torch.empty(0)),
        ("bf16", torch.tensor([1.0, float("nan")], dtype=torch.bfloat16)),
        ("fp8", torch.tensor([1.0, 2.0]).to(torch.float8_e4m3fn)),
        ("fp16_big", torch.full((4,), 60000.0, dtype=torch.float16)),
        ("complex", torch.tensor([1 + 1j, complex(float("inf"), 0)])),
        ("fp64", torch.tensor([1e308, 1e308], dtype=torch.float64)),
        ("finite", finite),
    ]
    assert nonfinite_tensors(named) == ["bf16", "complex"]
