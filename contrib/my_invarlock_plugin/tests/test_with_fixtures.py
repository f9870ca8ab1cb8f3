"""The package's guards and adapter tested with invarlock's shipped pytest fixtures."""

import pytest
import torch

from my_plugin.custom_adapter import CustomFormatAdapter
from my_plugin.my_guard import NaNCheckGuard
from my_plugin.threshold_guard import ThresholdGuard


def poison(model):
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("nan")


def test_nan_check_through_prepare_edit_validate(run_guard):
    assert run_guard(NaNCheckGuard).action == "continue"
    result = run_guard(NaNCheckGuard, after_edit=poison)
    assert result.action == "abort" and result.validate.metrics["nan_param_count"] == 1
    assert run_guard(NaNCheckGuard, options={"strict": False}, after_edit=poison).action == "warn"


def test_threshold_sees_the_edited_tiny_model(run_guard):
    result = run_guard(ThresholdGuard, options={"max_magnitude": 100.0, "warn_magnitude": 1e-4})
    assert result.action == "warn"
    assert result.prepare.raw["baseline_params"] == len(result.guard._baseline_magnitudes)
    assert run_guard(ThresholdGuard, options={"max_magnitude": 1e-4}).action == "abort"


@pytest.mark.parametrize("weights", ["model.safetensors", "model.pt"])
def test_custom_format_loads_into_the_right_class(weights, tiny_models, tmp_path):
    source = tiny_models.model("llama")
    target = tmp_path / "custom"
    target.mkdir()
    source.config.to_json_file(target / "config.json")
    state = {k: v.contiguous() for k, v in source.state_dict().items() if k != "lm_head.weight"}
    if weights == "model.pt":
        torch.save(state, target / weights)
    else:
        from safetensors.torch import save_file

        save_file(state, target / weights)
    adapter = CustomFormatAdapter()
    assert adapter.can_load(str(target)) is (weights == "model.pt")
    model = adapter.load_model(str(target), device="cpu")
    assert type(model).__name__ == "LlamaForCausalLM"
    ids = torch.tensor([[1, 5, 9, 13]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, source(ids).logits)
    description = adapter.describe(model)
    assert description["model_class"] == "LlamaForCausalLM"
    assert description["n_layer"] == 3 and description["dtype"] == "float32"


def test_custom_format_runs_end_to_end(invarlock_project, tiny_models):
    model = tiny_models.model("gpt2")
    project = invarlock_project(
        "model: {id: custom, adapter: custom_format, device: cpu}\n"
        "guards: {order: [invariants, nan_check]}\n"
    )
    (project.path / "custom").mkdir()
    model.config.to_json_file(project.path / "custom" / "config.json")
    torch.save(model.state_dict(), project.path / "custom" / "model.pt")
    outcome = project.run("-p", "custom_format", "-p", "nan_check").assert_kept()
    assert outcome.report["model"]["adapter"] == "custom_format"
    assert outcome.report["model"]["model_class"] == "GPT2LMHeadModel"
    assert outcome.guard("nan_check")["passed"] is True
