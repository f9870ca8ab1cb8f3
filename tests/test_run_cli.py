"""``invarlock run`` as a user runs it: exit codes, messages, dry run, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import clean_env, run_cli, table_row
from runner_helpers import CAPTURE_GUARD, make_project

CONFIG = """
model: {{id: {model}, device: cpu}}
edit: {{name: quant_rtn, bits: 8}}
guards:
  order: {order}
"""


def project(
    tmp_path: Path, model: Path, order: str = "[invariants]", plugins: str | None = None
) -> Path:
    return make_project(tmp_path, CONFIG.format(model=model, order=order), plugins)


def test_kept_run_exits_0_and_prints_the_summary(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    proj = project(tmp_path, tiny_gpt2_dir, "[invariants, spectral, variance]")
    result = run_cli("run", "-c", "config.yaml", cwd=proj)
    assert result.code == 0, result.err
    assert "Decision: ✅ kept" in result.out
    assert "| invariants | validate | continue |" in result.out
    report = json.loads(next((proj / "runs").glob("*/report.json")).read_text())
    assert report["status"] == "kept" and report["exit_code"] == 0
    assert "load" in result.err and "validate" in result.err  # progress goes to stderr
    assert "Loading weights" not in result.err


def test_guard_abort_exits_1(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    plugin = (
        CAPTURE_GUARD + '\nCapture.RESULT = {"passed": False, "action": "abort", "message": "no"}\n'
    )
    proj = project(tmp_path, tiny_gpt2_dir, "[capture]", plugin)
    result = run_cli("run", "-c", "config.yaml", cwd=proj)
    assert result.code == 1
    assert "rolled back" in result.out and "verified by hash" in result.out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model: {id: x}\nguards: [a\n", "config.yaml:3:1: invalid YAML"),
        ("model: {id: x}\nmodle: {}\n", "config.yaml:2: modle: unknown key"),
        ("edit: {bits: 8}\n", "model.id: missing"),
        ("model: {id: x}\nedit: {name: quant_rtn, bits: 9}\n", "config.yaml:2: edit.bits"),
        ("model: {id: x}\nmodel: {id: y}\n", "config.yaml:2: model: duplicate key"),
        ("model: {id: x}\noutput: {snapshot: tape}\n", "output.snapshot: must be one of"),
        (
            "model: {id: x}\nedit: {name: gptq}\n",
            "unknown edit 'gptq'; known edits: noop, quant_rtn",
        ),
    ],
)
def test_config_errors_exit_2_with_file_line_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    (tmp_path / "config.yaml").write_text(text)
    result = run_cli("run", "-c", "config.yaml", cwd=tmp_path)
    assert result.code == 2, result.err
    assert expected in result.err
    assert result.err.count("Error:") == 1
    assert not (tmp_path / "runs").exists()


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = run_cli("run", "-c", "nope.yaml", cwd=tmp_path)
    assert result.code == 2 and "config file not found: nope.yaml" in result.err


def test_set_override_errors_exit_2(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    proj = project(tmp_path, tiny_gpt2_dir)
    result = run_cli("run", "-c", "config.yaml", "--set", "edit.bits", cwd=proj)
    assert result.code == 2 and "expected KEY.PATH=VALUE" in result.err


def test_requested_broken_plugin_exits_3(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    proj = project(tmp_path, tiny_gpt2_dir)
    result = run_cli("run", "-c", "config.yaml", "-p", "no_such_plugin_xyz", cwd=proj)
    assert result.code == 3
    assert "no_such_plugin_xyz: no entry point or module named" in result.err


def test_missing_model_exits_4(tmp_path: Path) -> None:
    proj = project(tmp_path, tmp_path / "missing-model")
    result = run_cli("run", "-c", "config.yaml", cwd=proj)
    assert result.code == 4, result.err
    assert "missing-model" in result.err


def test_hub_id_without_network_permission_exits_4_at_once(tmp_path: Path) -> None:
    proj = make_project(tmp_path, "model: {id: gpt2, device: cpu}\nguards: {order: [invariants]}\n")
    started = time.perf_counter()
    result = run_cli("run", "-c", "config.yaml", cwd=proj)
    assert result.code == 4
    assert "INVARLOCK_ALLOW_NETWORK=1" in result.err
    assert time.perf_counter() - started < 60  # no download retries


def test_dry_run_prints_the_plan_without_loading(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    proj = project(tmp_path, tiny_gpt2_dir, "[invariants, spectral]")
    result = run_cli(
        "run",
        "-c",
        "config.yaml",
        "--dry-run",
        "--set",
        "edit.bits=4",
        cwd=proj,
        check_imports=True,
    )
    assert result.code == 0, result.err
    assert "adapter auto → hf_causal" in result.out
    assert "quant_rtn bits=4" in result.out
    assert table_row(result.out, "2")[1:4] == ["spectral", "builtin", "spectral"]
    assert table_row(result.out, "2")[4].startswith("tier='balanced', max_rel_change=None")
    assert table_row(result.out, "—")[1:] == ["rmt", "", "", "skipped: not in guards.order"]
    assert not (proj / "runs").exists()
    assert result.heavy_imports == [] or "transformers" not in ",".join(result.heavy_imports)

    as_json = run_cli("run", "-c", "config.yaml", "--dry-run", "--json", cwd=proj)
    plan = as_json.json()
    assert [g["name"] for g in plan["guards"]] == ["invariants", "spectral"]
    assert plan["model"]["adapter_resolved"] == "hf_causal"


@pytest.mark.slow
def test_ctrl_c_mid_run_restores_and_exits_130(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    """A real SIGINT while a guard is validating the edited model."""
    marker = tmp_path / "validating"
    plugin = CAPTURE_GUARD + (
        "\nimport time, pathlib\n"
        "def _slow(self, model, adapter, context):\n"
        f"    pathlib.Path({str(marker)!r}).write_text('x')\n"
        "    time.sleep(120)\n"
        "Capture.validate = _slow\n"
    )
    proj = project(tmp_path, tiny_gpt2_dir, "[capture]", plugin)
    proc = subprocess.Popen(
        [sys.executable, "-m", "invarlock", "run", "-c", "config.yaml"],
        cwd=proj,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    report = json.loads(next((proj / "runs").glob("*/report.json")).read_text())
    assert report["status"] == "interrupted"
    assert report["decision"]["model_restored"] is True
    assert report["snapshot"]["verified"] is True
    assert not list((proj / "runs").glob("*/*.tmp"))
