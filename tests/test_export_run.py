"""Exports from the pipeline and from ``invarlock export``: chosen by output.format, refused
before anything is written, proven on load, and never left half-written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from capture_guard import CAPTURE_GUARD
from click.testing import CliRunner

pytest.importorskip("compressed_tensors")
pytest.importorskip("gguf")

from invarlock.cli import cli
from invarlock.testing import load_model, weight_bits

CONFIG = """
model: {{id: {model}, device: cpu}}
edit: {{name: quant_rtn, {edit}}}
guards:
  order: [invariants, capture]
output: {{dir: runs, format: {formats}}}
"""
Q8 = 'grid: gguf_q8_0, exclude: ["*down_proj"]'


def config(model: Path, formats: str, edit: str = Q8) -> str:
    return CONFIG.format(model=model, formats=formats, edit=edit)


def run(invarlock_project, text: str, *args: str):
    """``invarlock run`` with the capture guard, in a fresh project."""
    return invarlock_project(text, CAPTURE_GUARD).run(*args)


def listing(run_dir: Path) -> list[str]:
    """The run directory's entries, less report.html (written when the plots extra is in)."""
    return sorted(path.name for path in run_dir.iterdir() if path.name != "report.html")


def test_one_run_writes_every_chosen_format(invarlock_project, tiny_llama_dir) -> None:
    text = config(tiny_llama_dir, "[native, compressed-tensors, gguf]")
    outcome = run(invarlock_project, text, "--json").assert_ok()
    report = outcome.json()  # what the run printed
    assert [entry["format"] for entry in report["exports"]] == [
        "native",
        "compressed-tensors",
        "gguf",
    ]
    assert report["export"] == {"path": str(outcome.run_dir / "model")}
    assert listing(outcome.run_dir) == [
        "events.jsonl",
        "model",
        "model-compressed-tensors",
        "model-gguf",
        "report.json",
    ]
    for entry in report["exports"]:
        assert entry["proof"]["bit_equal"] is True
        assert entry["proof"]["max_abs_weight_diff"] == 0.0
        for item in entry["files"]:
            data = (Path(entry["path"]) / item["name"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == item["sha256"]
    saved = json.loads((outcome.run_dir / "report.json").read_text())
    assert saved["exports"] == report["exports"]
    assert saved["plan"]["export"] == {"formats": ["native", "compressed-tensors", "gguf"]}


def test_export_true_still_means_native(invarlock_project, tiny_llama_dir) -> None:
    text = config(tiny_llama_dir, "x").replace("format: x", "export: true")
    outcome = run(invarlock_project, text)
    assert [entry["format"] for entry in outcome.report["exports"]] == ["native"]


def test_a_format_that_cannot_hold_the_edit_is_refused_at_plan_time(
    invarlock_project, tiny_llama_dir
):
    project = invarlock_project(config(tiny_llama_dir, "[native, gguf]", edit="bits: 8"))
    refused = project.run().assert_exit(2)  # a configuration error
    refused.assert_err("output.format: format 'gguf' cannot hold this edit")
    assert refused.err.rstrip().endswith("the nearest edit that fits is edit.grid: gguf_q8_0")
    assert refused.report is None and not (project.path / "runs").exists()


def test_unknown_format_is_a_config_error(invarlock_project, tiny_llama_dir) -> None:
    outcome = run(invarlock_project, config(tiny_llama_dir, "[onnx]")).assert_exit(2)
    outcome.assert_err("output.format: unknown format 'onnx'; known: native")


def test_failure_in_the_middle_of_writing_leaves_nothing(
    invarlock_project, tiny_llama_dir, monkeypatch
):
    import gguf

    def disk_full(self, *args, **kwargs):
        self.fout[0].write(b"\0" * 1000)  # half a file on disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", disk_full)
    text = config(tiny_llama_dir, "[native, compressed-tensors, gguf]")
    outcome = run(invarlock_project, text).assert_status("error", 4)
    report = outcome.report
    assert "gguf: writing failed: OSError" in report["error"]["message"]
    assert "No space left on device" in report["error"]["message"]
    assert listing(outcome.run_dir) == ["events.jsonl", "report.json"]  # earlier formats too
    assert report["decision"]["model_restored"] is True
    model = outcome.local.CAPTURED["model"]
    assert weight_bits(model) == weight_bits(load_model(tiny_llama_dir))


def test_an_export_that_loads_differently_fails_and_is_removed(
    invarlock_project, tiny_llama_dir, monkeypatch
):
    from invarlock.exporters.hf import HFExporter

    real_load = HFExporter.load

    def drifting_load(self, out, model):  # a consumer that reads one weight wrong
        loaded = real_load(self, out, model)
        with torch.no_grad():
            loaded.model.layers[1].mlp.up_proj.weight[0, 0] += 1e-3
        return loaded

    monkeypatch.setattr(HFExporter, "load", drifting_load)
    outcome = run(invarlock_project, config(tiny_llama_dir, "[hf]")).assert_exit(4)
    report = outcome.report
    assert "the export differs from the guarded model" in report["error"]["message"]
    assert "model.layers.1.mlp.up_proj.weight" in report["error"]["message"]
    assert listing(outcome.run_dir) == ["events.jsonl", "report.json"]


def test_export_command_re_creates_a_kept_run(invarlock_project, tiny_llama_dir) -> None:
    outcome = run(invarlock_project, config(tiny_llama_dir, "[native]")).assert_ok()
    run_dir = outcome.run_dir
    result = CliRunner().invoke(
        cli, ["export", str(run_dir), "--format", "gguf", "--format", "compressed-tensors"]
    )
    assert result.exit_code == 0, result.output
    assert "gguf: " in result.output and "bit-equal to the guarded model" in result.output
    saved = json.loads((run_dir / "report.json").read_text())
    assert [entry["format"] for entry in saved["exports"]] == [
        "native",
        "gguf",
        "compressed-tensors",
    ]
    assert all(entry["proof"]["bit_equal"] for entry in saved["exports"])
    # the re-created model is the run's: the same bytes as the run's own native export
    from transformers import AutoModelForCausalLM

    from invarlock.edits.export import load_quantized

    native = load_quantized(run_dir / "model")
    [gguf_file] = (run_dir / "model-gguf").glob("*.gguf")
    again = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    assert weight_bits(again) == weight_bits(native)

    repeat = CliRunner().invoke(cli, ["export", str(run_dir), "--format", "gguf"])
    assert repeat.exit_code == 4 and "already exists; not overwritten" in repeat.output


def test_export_command_refuses_what_it_cannot_vouch_for(
    invarlock_project, tmp_path, tiny_llama_dir
) -> None:
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_llama_dir, model_dir)
    outcome = run(invarlock_project, config(model_dir, "[native]", edit="bits: 8")).assert_ok()
    run_dir = outcome.run_dir

    refused = CliRunner().invoke(cli, ["export", str(run_dir), "--format", "gguf"])
    assert (
        refused.exit_code == 2
        and "nearest edit that fits is edit.grid: gguf_q8_0" in refused.output
    )

    changed = load_model(model_dir)
    with torch.no_grad():
        changed.model.layers[0].self_attn.q_proj.weight[0, 0] += 1.0
    changed.save_pretrained(model_dir)
    stale = CliRunner().invoke(cli, ["export", str(run_dir), "--format", "hf"])
    assert stale.exit_code == 4 and "no longer holds the weights the run loaded" in stale.output
    assert not (run_dir / "model-hf").exists()

    report = json.loads((run_dir / "report.json").read_text())
    report["status"] = "rolled_back"
    (run_dir / "report.json").write_text(json.dumps(report))
    rolled_back = CliRunner().invoke(cli, ["export", str(run_dir), "--format", "hf"])
    assert rolled_back.exit_code == 2 and "ended 'rolled_back'" in rolled_back.output


def test_dry_run_refuses_a_format_with_the_reason(tmp_path, tiny_llama_dir, monkeypatch) -> None:
    def write(formats: str, edit: str = Q8) -> None:
        text = config(tiny_llama_dir, formats, edit).replace("invariants, capture", "invariants")
        (tmp_path / "config.yaml").write_text(text)

    write("[gguf]", edit="bits: 4")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run", "-c", "config.yaml", "--dry-run"])
    assert result.exit_code == 2
    assert "format 'gguf' cannot hold this edit" in result.output
    assert "edit.grid: gguf_q4_0" in result.output
    assert not (tmp_path / "runs").exists()

    write("[gguf, hf]")
    planned = CliRunner().invoke(cli, ["run", "-c", "config.yaml", "--dry-run"])
    assert planned.exit_code == 0, planned.output
    assert "export  gguf, hf (when kept)" in planned.output
