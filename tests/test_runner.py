"""The pipeline end to end on real tiny models: keep, warn, roll back, and every way a run
can go wrong — each leaving the model bit-exactly as it was and a complete report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from capture_guard import CAPTURE_GUARD

from invarlock.testing import weight_bits
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


def run(invarlock_project, text: str, plugins: str | None = None, *args: str):
    """``invarlock run`` in a fresh project (the shipped ``invarlock_project`` fixture)."""
    return invarlock_project(text, plugins).run(*args)


def capture_plugin(result: str) -> str:
    return CAPTURE_GUARD + f"\nCapture.RESULT = {result}\n"


def test_int8_default_guards_keep_the_edit(
    invarlock_project, tiny_model, tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    outcome = run(
        invarlock_project,
        config(tiny_gpt2_dir, "[invariants, spectral, variance, capture]"),
        capture_plugin('{"passed": True, "action": "continue", "message": "ok"}'),
    )
    report = outcome.report
    assert report["status"] == "kept", report["error"]
    assert report["exit_code"] == 0
    assert report["model"]["adapter"] == "hf_causal"
    layers = report["edit"]["layers"]
    n_layer = report["model"]["n_layer"]
    assert len(layers) == 4 * n_layer  # c_attn, c_proj, c_fc, mlp.c_proj per block
    assert [g["guard"] for g in report["guards"]] == [
        "invariants",
        "spectral",
        "variance",
        "capture",
    ] * 2
    assert all(g["action"] == "continue" for g in report["guards"])

    on_disk = json.loads((outcome.run_dir / "report.json").read_text())
    assert on_disk["status"] == "kept" and on_disk["schema"] == "invarlock.report/v1"
    assert not list(outcome.run_dir.glob("*.tmp"))
    edited = outcome.local.CAPTURED["model"]
    assert weight_bits(edited) != weight_bits(tiny_model)
    context = outcome.local.CAPTURED["context"]
    assert context["prepare"] == {"ready": True}
    assert context["edit"].name == "quant_rtn"
    assert context["edit"].to_dict() == report["edit"]


def test_events_log_every_hook_call_with_plugin_and_duration(
    invarlock_project, tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    outcome = run(invarlock_project, config(tiny_gpt2_dir, "[invariants]"))
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


def test_abort_rolls_back_bit_exactly(
    invarlock_project, tiny_model, tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    outcome = run(
        invarlock_project,
        config(tiny_gpt2_dir),
        capture_plugin('{"passed": False, "action": "abort", "message": "too risky"}'),
    )
    report = outcome.report
    assert report["status"] == "rolled_back" and report["exit_code"] == 1
    assert report["decision"]["reasons"] == ["capture (validate): too risky"]
    assert (
        report["decision"]["edit_applied"] is True and report["decision"]["model_restored"] is True
    )
    assert report["snapshot"]["restored"] is True and report["snapshot"]["verified"] is True
    model = outcome.local.CAPTURED["model"]
    assert weight_bits(model) == weight_bits(tiny_model)


def test_warn_keeps_the_edit_with_warnings(
    invarlock_project, tiny_model, tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    outcome = run(
        invarlock_project,
        config(tiny_gpt2_dir),
        capture_plugin(
            '{"passed": True, "action": "warn", "message": "close call",'
            ' "warnings": ["layer 0 drifted"]}'
        ),
    )
    report = outcome.report
    assert report["status"] == "warned" and report["exit_code"] == 0
    assert report["decision"]["reasons"] == ["capture: close call"]
    assert report["guards"][-1]["warnings"] == ["layer 0 drifted"]
    model = outcome.local.CAPTURED["model"]
    assert weight_bits(model) != weight_bits(tiny_model)


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
def test_malformed_results_fail_the_guard_roll_back_and_exit_3(
    invarlock_project, tiny_model, tmp_path: Path, tiny_gpt2_dir: Path, result: str, expected: str
) -> None:
    outcome = run(invarlock_project, config(tiny_gpt2_dir), capture_plugin(result))
    report = outcome.report
    assert report["status"] == "rolled_back" and report["exit_code"] == 3  # a plugin bug
    failed = report["guards"][-1]
    assert failed["guard"] == "capture" and failed["action"] == "abort"
    assert "guard 'capture' validate()" in failed["message"] and expected in failed["message"]
    assert weight_bits(outcome.local.CAPTURED["model"]) == weight_bits(tiny_model)


def test_a_guard_that_raises_is_an_abort_with_its_traceback_and_exit_3(
    invarlock_project, tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    plugin = CAPTURE_GUARD + (
        "\ndef _boom(self, model, adapter, context):\n    raise ValueError('exploded')\n"
        "Capture.validate = _boom\n"
    )
    outcome = run(invarlock_project, config(tiny_gpt2_dir), plugin)
    failed = outcome.report["guards"][-1]
    assert outcome.report["exit_code"] == 3
    assert failed["message"] == "guard 'capture' validate() raised ValueError: exploded"
    assert "Traceback" in failed["error"] and "invarlock_plugins.py" in failed["error"]


def test_not_ready_in_prepare_stops_before_the_edit(
    invarlock_project, tiny_model, tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    plugin = CAPTURE_GUARD + (
        "\ndef _prep(self, model, adapter, calib, policy):\n"
        "    CAPTURED['model'] = model\n"
        "    return {'ready': False, 'message': 'no baseline'}\n"
        "Capture.prepare = _prep\n"
    )
    outcome = run(invarlock_project, config(tiny_gpt2_dir), plugin)
    report = outcome.report
    assert report["exit_code"] == 1 and report["status"] == "rolled_back"
    assert report["decision"]["edit_applied"] is False
    assert report["edit"] is None
    assert weight_bits(outcome.local.CAPTURED["model"]) == weight_bits(tiny_model)


def test_plugin_hook_raising_mid_run_is_a_plugin_error_and_restores(
    invarlock_project, tiny_model, tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    plugin = CAPTURE_GUARD + (
        "\n@hookimpl\ndef invarlock_edit_applied(run, result):\n"
        "    raise RuntimeError('observer broke')\n"
    )
    outcome = run(invarlock_project, config(tiny_gpt2_dir), plugin)
    report = outcome.report
    assert report["status"] == "error" and report["exit_code"] == 3
    assert (
        "plugin 'local:invarlock_plugins.py' hook invarlock_edit_applied raised "
        "RuntimeError: observer broke" in report["error"]["message"]
    )
    assert report["decision"]["model_restored"] is True
    assert weight_bits(outcome.local.CAPTURED["model"]) == weight_bits(tiny_model)


def test_keyboard_interrupt_mid_run_restores(
    invarlock_project, tiny_model, tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    plugin = CAPTURE_GUARD + (
        "\ndef _interrupt(self, model, adapter, context):\n    raise KeyboardInterrupt\n"
        "Capture.validate = _interrupt\n"
    )
    outcome = run(invarlock_project, config(tiny_gpt2_dir), plugin)
    assert outcome.report["status"] == "interrupted" and outcome.report["exit_code"] == 130
    assert json.loads((outcome.run_dir / "report.json").read_text())["status"] == "interrupted"
    assert weight_bits(outcome.local.CAPTURED["model"]) == weight_bits(tiny_model)


def test_guards_not_in_the_order_are_listed_as_skipped(
    invarlock_project, tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    outcome = run(invarlock_project, config(tiny_gpt2_dir, "[invariants]"))
    skipped = {s["name"]: s["reason"] for s in outcome.report["skipped_guards"]}
    assert skipped["spectral"] == "skipped: not in guards.order"
    assert skipped["variance"] == "skipped: not in guards.order"
    assert "invariants" not in skipped


def test_documented_nan_check_gets_its_yaml_block(
    invarlock_project,
    tiny_model,
    tmp_path: Path,
    tiny_gpt2_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
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
    # A harmful edit: RTN that also writes a NaN into one of its own targets. (A plugin
    # that wrote it from a hook would be caught by the integrity check instead.)
    from invarlock.edits.rtn import QuantRTN

    rtn_apply = QuantRTN.apply

    def harmful_apply(self: QuantRTN, model: Any, edit_config: Any) -> Any:
        import torch

        result = rtn_apply(self, model, edit_config)
        with torch.no_grad():
            model.transformer.h[0].attn.c_attn.weight[0, 0] = float("nan")
        return result

    monkeypatch.setattr(QuantRTN, "apply", harmful_apply)
    harm = CAPTURE_GUARD
    for strict, status in ((True, "rolled_back"), (False, "warned")):
        extra = f"  nan_check:\n    strict: {str(strict).lower()}\n"
        text = config(tiny_gpt2_dir, "[capture, nan_check]").replace("output:", extra + "output:")
        outcome = run(invarlock_project, text, harm, "-p", "nan_check")
        report = outcome.report
        nan = [g for g in report["guards"] if g["guard"] == "nan_check"]
        assert nan[0]["options"] == {"strict": strict}
        assert report["status"] == status, report["decision"]
        assert nan[-1]["message"] == "Found NaN in 1 parameters"
        model = outcome.local.CAPTURED["model"]
        restored = weight_bits(model) == weight_bits(tiny_model)
        assert restored is strict


def test_llama_run_is_kept(invarlock_project, tmp_path: Path, tiny_llama_dir: Path) -> None:
    outcome = run(invarlock_project, config(tiny_llama_dir, "[invariants, spectral, variance]"))
    assert outcome.report["status"] == "kept", outcome.report["error"]
    names = [layer["name"] for layer in outcome.report["edit"]["layers"]]
    assert any(n.endswith("self_attn.q_proj") for n in names)
    assert not any("embed" in n or "lm_head" in n for n in names)


def test_export_writes_a_loadable_checkpoint(
    invarlock_project, tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    from invarlock.edits.export import load_quantized

    plugin = CAPTURE_GUARD + (
        "\nimport torch\n"
        "def _validate(self, model, adapter, context):\n"
        "    with torch.no_grad():  # the edited model, before export touches anything\n"
        "        CAPTURED['logits'] = model(torch.tensor([[1, 2, 3, 4, 5]])).logits\n"
        "    return {'passed': True, 'action': 'continue', 'message': 'ok'}\n"
        "Capture.validate = _validate\n"
    )
    outcome = run(
        invarlock_project,
        config(tiny_gpt2_dir).replace("{dir: runs}", "{dir: runs, export: true}"),
        plugin,
    )
    assert outcome.report["status"] == "kept", outcome.report["error"]
    exported = outcome.run_dir / "model"
    assert (exported / "quantization.json").is_file()
    assert (exported / "tokenizer.json").is_file()
    assert not (outcome.run_dir / ".model.partial").exists()
    reloaded = load_quantized(exported)
    with torch.no_grad():
        logits = reloaded(torch.tensor([[1, 2, 3, 4, 5]])).logits
    assert torch.equal(logits, outcome.local.CAPTURED["logits"])


def test_unknown_guard_and_unknown_option_are_config_errors(
    invarlock_project, tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    unknown = run(invarlock_project, config(tiny_gpt2_dir, "[invariants, nan_chek]"))
    unknown.assert_exit(2).assert_err(
        "config.yaml:4: guards.order[1]: unknown guard 'nan_chek'",
        "known guards: invariants, rmt, spectral, variance",
    )

    text = config(tiny_gpt2_dir, "[spectral]").replace(
        "output:", "  spectral: {max_rel: 1}\noutput:"
    )
    project = invarlock_project(text)
    project.run().assert_exit(2).assert_err(
        "guards.spectral.max_rel: unknown option for guard 'spectral'",
        "max_rel_change (float | None = None)",
    )
    assert not (project.path / "runs").exists()  # nothing created


def test_set_overrides_reach_the_edit(
    invarlock_project, tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    outcome = run(
        invarlock_project,
        config(tiny_gpt2_dir, "[invariants]"),
        None,
        "--set",
        "edit.bits=4",
        "--set",
        "edit.group_size=16",
    )
    assert outcome.report["edit"]["params"]["bits"] == 4
    assert outcome.report["edit"]["params"]["group_size"] == 16
    assert outcome.report["status"] in ("kept", "warned")


def test_upstream_style_edit_plan_is_accepted(
    invarlock_project, tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    text = config(tiny_gpt2_dir, "[invariants]").replace(
        "edit: {name: quant_rtn, bits: 8}", "edit:\n  name: quant_rtn\n  plan: {bits: 6}"
    )
    outcome = run(invarlock_project, text)
    assert outcome.report["edit"]["params"]["bits"] == 6


def test_missing_model_is_a_model_error_before_any_run_directory(
    invarlock_project, tmp_path: Path
) -> None:
    proj = invarlock_project(config(tmp_path / "nowhere", "[invariants]"))
    proj.run().assert_exit(4).assert_err("model path not found", "nowhere")
    assert not (proj.path / "runs").exists()


def test_noop_is_a_baseline(
    invarlock_project, tiny_model, tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    text = config(tiny_gpt2_dir).replace("{name: quant_rtn, bits: 8}", "{name: noop}")
    outcome = run(
        invarlock_project,
        text,
        capture_plugin('{"passed": True, "action": "continue", "message": "ok"}'),
    )
    assert outcome.report["status"] == "kept"
    assert weight_bits(outcome.local.CAPTURED["model"]) == weight_bits(tiny_model)


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
    invarlock_project,
    tiny_model,
    tmp_path: Path,
    tiny_gpt2_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def disk_full(model, codes, out_dir, *, source_dir=None):
        out_dir.mkdir(parents=True)
        (out_dir / "model.safetensors").write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("invarlock.edits.export.write_codes", disk_full)
    outcome = run(
        invarlock_project,
        config(tiny_gpt2_dir).replace("{dir: runs}", "{dir: runs, export: true}"),
        capture_plugin('{"passed": True, "action": "continue", "message": "ok"}'),
    )
    report = outcome.report
    assert report["status"] == "error" and report["exit_code"] == 4
    assert "No space left on device" in report["error"]["message"]
    written = sorted(p.name for p in outcome.run_dir.iterdir() if p.name != "report.html")
    assert written == ["events.jsonl", "report.json"]
    assert report["decision"]["model_restored"] is True
    model = outcome.local.CAPTURED["model"]
    assert weight_bits(model) == weight_bits(tiny_model)
