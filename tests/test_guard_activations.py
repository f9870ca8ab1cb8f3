"""The ``variance`` guard on block activations (calibration windows of real text)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from reference_rtn import rtn_
from transformers import AutoModelForCausalLM, AutoTokenizer

from invarlock.core.results import check_validate_result
from invarlock.guards import VarianceGuard
from invarlock.guards.activations import block_output_variance
from invarlock.testing.models import corpus_text

torch.set_num_threads(1)


def load(model_dir: Path) -> tuple[Any, list[torch.Tensor]]:
    """The saved tiny model and two calibration batches of 3 windows × 32 tokens."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = tokenizer(corpus_text(), return_tensors="pt")["input_ids"][0][: 6 * 32]
    windows = ids.view(6, 32)
    return model, [windows[:3], windows[3:]]


@pytest.fixture(params=["gpt2", "llama"])
def tiny(request: pytest.FixtureRequest) -> tuple[Any, list[torch.Tensor]]:
    return load(request.getfixturevalue(f"tiny_{request.param}_dir"))


def run(guard: VarianceGuard, model: Any, calib: Any, edit) -> dict[str, Any]:
    prep = guard.prepare(model, None, calib, None)
    assert prep["ready"] is True, prep
    edit(model)
    out = guard.validate(model, None, {})
    json.dumps(prep, allow_nan=False)
    json.dumps(out, allow_nan=False)
    check_validate_result("variance", out)
    return out


def blocks_of(model: Any) -> Any:
    return model.transformer.h if hasattr(model, "transformer") else model.model.layers


def test_noop_and_int8_pass_and_weights_are_never_changed(tiny) -> None:
    model, calib = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = run(VarianceGuard(source="activations", windows=5), model, calib, lambda m: None)
    assert out["action"] == "continue"
    assert out["metrics"]["activations"]["windows"] == 5  # spans both calib batches
    assert out["metrics"]["activations"]["max_agreed_change"] == 0.0
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # observes only
    assert all(not m._forward_hooks for m in model.modules())  # hooks removed
    out = run(VarianceGuard(), model, calib, lambda m: rtn_(m, 8))
    assert out["action"] == "continue", out["message"]


def test_scaled_block_output_aborts_with_a_paired_interval(tiny) -> None:
    model, calib = tiny
    last = blocks_of(model)[-1]
    down = last.mlp.down_proj if hasattr(last.mlp, "down_proj") else last.mlp.c_proj

    def amplify(_: Any) -> None:
        with torch.no_grad():
            down.weight.mul_(4.0)

    guard = VarianceGuard(source="activations")
    out = run(guard, model, calib, amplify)
    assert out["action"] == "abort"
    worst = out["metrics"]["activations"]["blocks"][0]
    assert worst["block"].endswith(str(len(blocks_of(model)) - 1))
    low, high = worst["interval"]
    assert worst["agreed_change"] == pytest.approx(low)
    assert 0 < low <= worst["change"] <= high
    assert "interval" in out["message"] and "4 windows" in out["message"]


def test_block_and_tier_are_honoured(tiny) -> None:
    model, calib = tiny
    last = blocks_of(model)[-1]
    down = last.mlp.down_proj if hasattr(last.mlp, "down_proj") else last.mlp.c_proj

    def nudge(_: Any) -> None:
        with torch.no_grad():
            down.weight.mul_(2.0)

    state = {k: v.clone() for k, v in model.state_dict().items()}
    strict = run(VarianceGuard(source="activations", tier="conservative"), model, calib, nudge)
    model.load_state_dict(state)
    loose = run(
        VarianceGuard(
            source="activations", max_activation_change=50.0, warn_activation_change=40.0
        ),
        model,
        calib,
        nudge,
    )
    assert strict["action"] in ("warn", "abort") and loose["action"] == "continue"


def test_zeroed_head_aborts_on_weights(tiny) -> None:
    model, _ = tiny
    attention = blocks_of(model)[0]
    out_proj = attention.self_attn.o_proj if hasattr(attention, "self_attn") else None

    def zero_head(_: Any) -> None:
        with torch.no_grad():
            if out_proj is not None:  # Linear (out, in): the head's input columns
                out_proj.weight[:, :16] = 0.0
            else:  # GPT-2 Conv1D (in, out): the head's input rows
                attention.attn.c_proj.weight[:16, :] = 0.0

    out = run(VarianceGuard(source="weights"), model, None, zero_head)
    assert out["action"] == "abort"
    assert "16 input columns became constant (zeroed)" in out["message"]


def test_activations_need_calibration_windows(tiny) -> None:
    model, _ = tiny
    prep = VarianceGuard(source="activations").prepare(model, None, None, None)
    assert prep["ready"] is False
    assert "no calibration windows" in prep["message"]
    both = VarianceGuard().prepare(model, None, None, None)
    assert both["ready"] is True
    assert any("judging weights only" in w for w in both["warnings"])
    with pytest.raises(TypeError, match=r"calib must be a list of \[batch, seq_len\]"):
        VarianceGuard().prepare(model, None, [torch.zeros(5, dtype=torch.long)], None)


def test_block_output_variance_matches_a_direct_forward(tiny) -> None:
    model, calib = tiny
    container = "transformer.h" if hasattr(model, "transformer") else "model.layers"
    windows = [calib[0][0], calib[0][1]]
    found = block_output_variance(model, container, windows)
    with torch.no_grad():
        hidden = model(input_ids=windows[1].unsqueeze(0), output_hidden_states=True)
    # hidden_states[i + 1] is block i's output, except the last one (after the final norm)
    expected = hidden.hidden_states[1][0].double().var(dim=0, correction=0)
    assert torch.allclose(found[0, 1], expected, rtol=1e-5, atol=1e-9)
