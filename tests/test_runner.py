"""The pipeline end to end on real tiny models: keep, warn, roll back, and every way a run
can go wrong — each leaving the model bit-exactly as it was and a complete report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from runner_helpers import CAPTURE_GUARD, load_fresh, run_project, state_dict_bits

from invarlock.core.errors import ConfigError
from invarlock.testing.distributions import write_distribution

REPO = Path(__file__).resolve().parents[1]

BASE = """
model: {{id: {model}, device: cpu}}
edit: {{name: quant_rtn, bits: 8}}
guards:
  order: {order}
output: {{dir: runs}}
"""


def config(model: Path, order: str = "[invariants, capture]", extra: str = "") -> str:
    return BASE.format(model=model, order=order) + extra


def capture_plugin(result: str) -> str:
    return CAPTURE_GUARD + f"\nCapture.RESULT = {result}\n"


def test_int8_default_guards_keep_the_edit(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    outcome = run_project(
        tmp_path,
        config(tiny_gpt2_dir, "[invariants, spectral, variance, capture]"),
        capture_plugin('{"passed": True, "action": "continue", "message": "ok"}'),
    )
    report = outcome.report
    assert report.status == "kept", report.error
    assert report.exit_code == 0
    assert report.model["adapter"] == "hf_causal"
    layers = report.edit["layers"]
    n_layer = report.model["n_layer"]
    assert len(layers) == 4 * n_layer  # c_attn, c_proj, c_fc, mlp.c_proj per block
    assert [g["guard"] for g in report.guards] == [
        "invariants",
        "spectral",
        "variance",
        "capture",
    ] * 2
    assert all(g["action"] == "continue" for g in report.guards)

    on_disk = json.loads((outcome.run_dir / "report.json").read_text())
    assert on_disk["status"] == "kept" and on_disk["schema"] == "invarlock.report/v1"
    assert not list(outcome.run_dir.glob("*.tmp"))
    edited = outcome.local.CAPTURED["model"]
    assert state_dict_bits(edited) != state_dict_bits(load_fresh(tiny_gpt2_dir))
    context = outcome.local.CAPTURED["context"]
    assert context["prepare"] == {"ready": True}
    assert context["edit"]["name"] == "quant_rtn"


def test_events_log_every_hook_call_with_plugin_and_duration(
    tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    outcome = run_project(tmp_path, config(tiny_gpt2_dir, "[invariants]"))
    lines = [
        json.loads(line) for line in (outcome.run_dir / "events.jsonl").read_text().splitlines()
    ]
    hooks = [e for e in lines if e["event"] == "hook"]
    called = [e["hook"] for e in hooks]
    for expected in (
        "invarlock_configure",
        "invarlock_run_start",
        "invarlock_load_model",
        "invarlock_model_loaded",
        "invarlock_guard_prepare",
        "invarlock_edit_applied",
        "invarlock_guard_validate",
        "invarlock_guard_result",
        "invarlock_report",
        "invarlock_run_finish",
    ):
        assert expected in called
    load = next(e for e in hooks if e["hook"] == "invarlock_load_model")
    assert "adapter:hf_causal" in load["plugins"] and load["duration_s"] > 0
    prepare = next(e for e in hooks if e["hook"] == "invarlock_guard_prepare")
    assert prepare["guard"] == "invariants" and "guard:invariants" in prepare["plugins"]
    assert lines[-1]["event"] == "run_finish"


def test_abort_rolls_back_bit_exactly(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    outcome = run_project(
        tmp_path,
        config(tiny_gpt2_dir),
        capture_plugin('{"passed": False, "action": "abort", "message": "too risky"}'),
    )
    report = outcome.report
    assert report.status == "rolled_back" and report.exit_code == 1
    assert report.decision["reasons"] == ["capture (validate): too risky"]
    assert report.decision["edit_applied"] is True and report.decision["model_restored"] is True
    assert report.snapshot["restored"] is True and report.snapshot["verified"] is True
    model = outcome.local.CAPTURED["model"]
    assert state_dict_bits(model) == state_dict_bits(load_fresh(tiny_gpt2_dir))


def test_warn_keeps_the_edit_with_warnings(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    outcome = run_project(
        tmp_path,
        config(tiny_gpt2_dir),
        capture_plugin(
            '{"passed": True, "action": "warn", "message": "close call",'
            ' "warnings": ["layer 0 drifted"]}'
        ),
    )
    report = outcome.report
    assert report.status == "warned" and report.exit_code == 0
    assert report.decision["reasons"] == ["capture: close call"]
    assert report.guards[-1]["warnings"] == ["layer 0 drifted"]
    model = outcome.local.CAPTURED["model"]
    assert state_dict_bits(model) != state_dict_bits(load_fresh(tiny_gpt2_dir))


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ('{"action": "continue", "message": "x"}', "result is missing key(s) 'passed'"),
        ('{"passed": True, "action": "explode", "message": "x"}', "key 'action' must be one of"),
        ('{"passed": "yes", "action": "continue", "message": "x"}', "key 'passed' must be a bool"),
        ('{"passed": True, "action": "continue", "message": 3}', "key 'message' must be a str"),
        (
            '{"passed": True, "action": "continue", "message": "x", "metrics": [1]}',
            "key 'metrics' must be a dict",
        ),
        ("None", "returned None"),
        ("[1, 2]", "returned list, not a dict"),
    ],
)
def test_malformed_results_fail_the_guard_and_roll_back(
    tmp_path: Path, tiny_gpt2_dir: Path, result: str, expected: str
) -> None:
    outcome = run_project(tmp_path, config(tiny_gpt2_dir), capture_plugin(result))
    report = outcome.report
    assert report.status == "rolled_back" and report.exit_code == 1
    failed = report.guards[-1]
    assert failed["guard"] == "capture" and failed["action"] == "abort"
    assert "guard 'capture' validate()" in failed["message"] and expected in failed["message"]
    assert state_dict_bits(outcome.local.CAPTURED["model"]) == state_dict_bits(
        load_fresh(tiny_gpt2_dir)
    )


def test_a_guard_that_raises_is_an_abort_with_its_traceback(
    tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    plugin = CAPTURE_GUARD + (
        "\ndef _boom(self, model, adapter, context):\n    raise ValueError('exploded')\n"
        "Capture.validate = _boom\n"
    )
    outcome = run_project(tmp_path, config(tiny_gpt2_dir), plugin)
    failed = outcome.report.guards[-1]
    assert outcome.report.exit_code == 1
    assert failed["message"] == "guard 'capture' validate() raised ValueError: exploded"
    assert "Traceback" in failed["error"] and "invarlock_plugins.py" in failed["error"]


def test_not_ready_in_prepare_stops_before_the_edit(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    plugin = CAPTURE_GUARD + (
        "\ndef _prep(self, model, adapter, calib, policy):\n"
        "    CAPTURED['model'] = model\n"
        "    return {'ready': False, 'message': 'no baseline'}\n"
        "Capture.prepare = _prep\n"
    )
    outcome = run_project(tmp_path, config(tiny_gpt2_dir), plugin)
    report = outcome.report
    assert report.exit_code == 1 and report.status == "rolled_back"
    assert report.decision["edit_applied"] is False
    assert report.edit is None
    assert state_dict_bits(outcome.local.CAPTURED["model"]) == state_dict_bits(
        load_fresh(tiny_gpt2_dir)
    )


def test_plugin_hook_raising_mid_run_is_a_plugin_error_and_restores(
    tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    plugin = CAPTURE_GUARD + (
        "\n@hookimpl\ndef invarlock_edit_applied(run, result):\n"
        "    raise RuntimeError('observer broke')\n"
    )
    outcome = run_project(tmp_path, config(tiny_gpt2_dir), plugin)
    report = outcome.report
    assert report.status == "error" and report.exit_code == 3
    assert (
        "plugin hook invarlock_edit_applied raised RuntimeError: observer broke"
        in report.error["message"]
    )
    assert report.decision["model_restored"] is True
    assert state_dict_bits(outcome.local.CAPTURED["model"]) == state_dict_bits(
        load_fresh(tiny_gpt2_dir)
    )


def test_keyboard_interrupt_mid_run_restores(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    plugin = CAPTURE_GUARD + (
        "\ndef _interrupt(self, model, adapter, context):\n    raise KeyboardInterrupt\n"
        "Capture.validate = _interrupt\n"
    )
    outcome = run_project(tmp_path, config(tiny_gpt2_dir), plugin)
    assert outcome.report.status == "interrupted" and outcome.report.exit_code == 130
    assert json.loads((outcome.run_dir / "report.json").read_text())["status"] == "interrupted"
    assert state_dict_bits(outcome.local.CAPTURED["model"]) == state_dict_bits(
        load_fresh(tiny_gpt2_dir)
    )


def test_guards_not_in_the_order_are_listed_as_skipped(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    outcome = run_project(tmp_path, config(tiny_gpt2_dir, "[invariants]"))
    skipped = {s["name"]: s["reason"] for s in outcome.report.skipped_guards}
    assert skipped["spectral"] == "skipped: not in guards.order"
    assert skipped["variance"] == "skipped: not in guards.order"
    assert "invariants" not in skipped


def test_documented_nan_check_gets_its_yaml_block(
    tmp_path: Path, tiny_gpt2_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guide's NaNCheckGuard, installed as a distribution, with ``strict`` from YAML;
    a harmful edit (NaN written after the RTN edit) must be caught and rolled back."""
    source = REPO / "contrib" / "my_invarlock_plugin" / "src" / "my_plugin"
    site = tmp_path / "site"
    write_distribution(
        site,
        "my-invarlock-plugin",
        entry_points={"invarlock.guards": {"nan_check": "my_plugin.my_guard:NaNCheckGuard"}},
        files={f"my_plugin/{p.name}": p.read_text() for p in source.glob("*.py")},
    )
    monkeypatch.syspath_prepend(str(site))
    harm = CAPTURE_GUARD + (
        "\n@hookimpl\ndef invarlock_edit_applied(run, result):\n"
        "    import torch\n"
        "    model = CAPTURED['model']\n"
        "    with torch.no_grad():\n"
        "        model.transformer.h[0].attn.c_attn.weight[0, 0] = float('nan')\n"
    )
    for strict, status in ((True, "rolled_back"), (False, "warned")):
        extra = f"  nan_check:\n    strict: {str(strict).lower()}\n"
        text = config(tiny_gpt2_dir, "[capture, nan_check]").replace("output:", extra + "output:")
        outcome = run_project(tmp_path / str(strict), text, harm)
        report = outcome.report
        nan = [g for g in report.guards if g["guard"] == "nan_check"]
        assert nan[0]["options"] == {"strict": strict}
        assert report.status == status, report.decision
        assert nan[-1]["message"] == "Found NaN in 1 parameters"
        model = outcome.local.CAPTURED["model"]
        restored = state_dict_bits(model) == state_dict_bits(load_fresh(tiny_gpt2_dir))
        assert restored is strict


def test_llama_run_is_kept(tmp_path: Path, tiny_llama_dir: Path) -> None:
    outcome = run_project(tmp_path, config(tiny_llama_dir, "[invariants, spectral, variance]"))
    assert outcome.report.status == "kept", outcome.report.error
    names = [layer["name"] for layer in outcome.report.edit["layers"]]
    assert any(n.endswith("self_attn.q_proj") for n in names)
    assert not any("embed" in n or "lm_head" in n for n in names)


def test_export_writes_a_loadable_checkpoint(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    from invarlock.edits.export import load_quantized

    plugin = CAPTURE_GUARD + (
        "\nimport torch\n"
        "def _validate(self, model, adapter, context):\n"
        "    with torch.no_grad():  # the edited model, before export touches anything\n"
        "        CAPTURED['logits'] = model(torch.tensor([[1, 2, 3, 4, 5]])).logits\n"
        "    return {'passed': True, 'action': 'continue', 'message': 'ok'}\n"
        "Capture.validate = _validate\n"
    )
    outcome = run_project(
        tmp_path, config(tiny_gpt2_dir).replace("{dir: runs}", "{dir: runs, export: true}"), plugin
    )
    assert outcome.report.status == "kept", outcome.report.error
    exported = outcome.run_dir / "model"
    assert (exported / "quantization.json").is_file()
    assert (exported / "tokenizer.json").is_file()
    assert not (outcome.run_dir / ".model.partial").exists()
    reloaded = load_quantized(exported)
    with torch.no_grad():
        logits = reloaded(torch.tensor([[1, 2, 3, 4, 5]])).logits
    assert torch.equal(logits, outcome.local.CAPTURED["logits"])


def test_unknown_guard_and_unknown_option_are_config_errors(
    tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    with pytest.raises(ConfigError) as unknown:
        run_project(tmp_path, config(tiny_gpt2_dir, "[invariants, nan_chek]"))
    message = str(unknown.value)
    assert "config.yaml:5: guards.order[1]: unknown guard 'nan_chek'" in message
    assert "known guards: invariants, rmt, spectral, variance" in message

    text = config(tiny_gpt2_dir, "[spectral]").replace(
        "output:", "  spectral: {max_rel: 1}\noutput:"
    )
    with pytest.raises(ConfigError) as option:
        run_project(tmp_path / "b", text)
    assert "guards.spectral.max_rel: unknown option for guard 'spectral'" in str(option.value)
    assert "max_rel_change (float | None = None)" in str(option.value)
    assert not (tmp_path / "b" / "project" / "runs").exists()  # nothing created


def test_set_overrides_reach_the_edit(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    outcome = run_project(
        tmp_path,
        config(tiny_gpt2_dir, "[invariants]"),
        overrides=("edit.bits=4", "edit.group_size=16"),
    )
    assert outcome.report.edit["params"]["bits"] == 4
    assert outcome.report.edit["params"]["group_size"] == 16
    assert outcome.report.status in ("kept", "warned")


def test_upstream_style_edit_plan_is_accepted(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    text = config(tiny_gpt2_dir, "[invariants]").replace(
        "edit: {name: quant_rtn, bits: 8}", "edit:\n  name: quant_rtn\n  plan: {bits: 6}"
    )
    outcome = run_project(tmp_path, text)
    assert outcome.report.edit["params"]["bits"] == 6


def test_missing_model_is_a_model_error(tmp_path: Path) -> None:
    outcome = run_project(tmp_path, config(tmp_path / "nowhere", "[invariants]"))
    assert outcome.report.exit_code == 4 and outcome.report.status == "error"
    assert "nowhere" in outcome.report.error["message"]


def test_noop_is_a_baseline(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    text = config(tiny_gpt2_dir).replace("{name: quant_rtn, bits: 8}", "{name: noop}")
    outcome = run_project(
        tmp_path, text, capture_plugin('{"passed": True, "action": "continue", "message": "ok"}')
    )
    assert outcome.report.status == "kept"
    assert state_dict_bits(outcome.local.CAPTURED["model"]) == state_dict_bits(
        load_fresh(tiny_gpt2_dir)
    )


def test_test_in_isolation_snippet_with_a_local_model(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    """The guide's "Test in Isolation" snippet, with a local path instead of a hub id."""
    site = tmp_path / "site"
    shutil.copytree(
        REPO / "contrib" / "my_invarlock_plugin" / "src" / "my_plugin", site / "my_plugin"
    )
    snippet = (
        "from my_plugin.my_guard import NaNCheckGuard\n"
        "from invarlock.adapters import HF_Causal_Adapter\n\n"
        "adapter = HF_Causal_Adapter()\n"
        f"model = adapter.load_model({str(tiny_gpt2_dir)!r}, device='cpu')\n\n"
        "guard = NaNCheckGuard()\n"
        "prep = guard.prepare(model, adapter, None, None)\n"
        "print(f'Prepare: {prep}')\n\n"
        "result = guard.validate(model, adapter, {})\n"
        "print(f'Validate: {result}')\n"
    )
    import subprocess
    import sys

    from cli_helpers import clean_env

    env = clean_env(PYTHONPATH=str(site))
    proc = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Prepare: {'ready': True, 'checked_params': 0}"
    assert lines[1].startswith("Validate: {'passed': True, 'action': 'continue', 'message': 'All ")


def test_failed_export_leaves_no_partial_checkpoint(
    tmp_path: Path, tiny_gpt2_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(model, config, out_dir, *, source_dir=None):
        out_dir.mkdir(parents=True)
        (out_dir / "model.safetensors").write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("invarlock.edits.export.export_quantized", disk_full)
    outcome = run_project(
        tmp_path,
        config(tiny_gpt2_dir).replace("{dir: runs}", "{dir: runs, export: true}"),
        capture_plugin('{"passed": True, "action": "continue", "message": "ok"}'),
    )
    report = outcome.report
    assert report.status == "error" and report.exit_code == 4
    assert "No space left on device" in report.error["message"]
    assert sorted(p.name for p in outcome.run_dir.iterdir()) == ["events.jsonl", "report.json"]
    assert report.decision["model_restored"] is True
    model = outcome.local.CAPTURED["model"]
    assert state_dict_bits(model) == state_dict_bits(load_fresh(tiny_gpt2_dir))
