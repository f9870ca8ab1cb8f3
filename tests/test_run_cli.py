"""``invarlock run`` as a user runs it: exit codes, messages, dry run, Ctrl-C.

In-process through the shipped ``invarlock_project`` fixture; in a subprocess only where the
process itself is under test (what it imports, a real SIGINT)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import clean_env, run_cli

from invarlock.testing.project import CliOutcome

CONFIG = """
model: {{id: {model}, device: cpu}}
edit: {{name: quant_rtn, bits: 8}}
guards:
  order: {order}
"""


CAPTURE_GUARD = """
from invarlock import hookimpl
from invarlock.core.api import Guard


class Capture(Guard):
    name = "capture"
    RESULT = {"passed": True, "action": "continue", "message": "ok"}

    def validate(self, model, adapter, context):
        return self.RESULT


@hookimpl
def invarlock_register_guards(register):
    register(Capture)
"""


def test_kept_run_exits_0_and_prints_the_summary(invarlock_project, tiny_gpt2_dir: Path) -> None:
    proj = invarlock_project(
        CONFIG.format(model=tiny_gpt2_dir, order="[invariants, spectral, variance]")
    )
    result = proj.run().assert_exit(0)
    result.assert_out("Decision: ✅ kept", "| invariants | validate | continue |")
    report = json.loads(next((proj.path / "runs").glob("*/report.json")).read_text())
    assert report == result.report
    assert report["status"] == "kept" and report["exit_code"] == 0
    assert "load" in result.err and "validate" in result.err  # progress goes to stderr
    assert "Loading weights" not in result.err


def test_guard_abort_exits_1(invarlock_project, tiny_gpt2_dir: Path) -> None:
    plugin = (
        CAPTURE_GUARD + '\nCapture.RESULT = {"passed": False, "action": "abort", "message": "no"}\n'
    )
    proj = invarlock_project(CONFIG.format(model=tiny_gpt2_dir, order="[capture]"), plugin)
    proj.run().assert_rolled_back().assert_out(
        "rolled back", "tensors verified against their load hash"
    )


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
    invarlock_project, text: str, expected: str
) -> None:
    proj = invarlock_project(files={"config.yaml": text})
    result = proj.run().assert_exit(2).assert_err(expected)
    assert result.err.count("Error:") == 1
    assert not (proj.path / "runs").exists()


def test_missing_config_file_exits_2(invarlock_project) -> None:
    invarlock_project().run(config="nope.yaml").assert_exit(2).assert_err(
        "config file not found: nope.yaml"
    )


def test_set_override_errors_exit_2(invarlock_project, tiny_gpt2_dir: Path) -> None:
    proj = invarlock_project(CONFIG.format(model=tiny_gpt2_dir, order="[invariants]"))
    proj.run("--set", "edit.bits").assert_exit(2).assert_err("expected KEY.PATH=VALUE")


def test_requested_broken_plugin_exits_3(invarlock_project, tiny_gpt2_dir: Path) -> None:
    proj = invarlock_project(CONFIG.format(model=tiny_gpt2_dir, order="[invariants]"))
    proj.run("-p", "no_such_plugin_xyz").assert_exit(3).assert_err(
        "no_such_plugin_xyz: no entry point or module named"
    )


def test_missing_model_exits_4(invarlock_project, tmp_path: Path) -> None:
    proj = invarlock_project(CONFIG.format(model=tmp_path / "missing-model", order="[invariants]"))
    proj.run().assert_exit(4).assert_err("missing-model")


def test_hub_id_without_network_permission_exits_4_at_once(invarlock_project) -> None:
    proj = invarlock_project("model: {id: gpt2, device: cpu}\nguards: {order: [invariants]}\n")
    started = time.perf_counter()
    proj.run().assert_exit(4).assert_err("INVARLOCK_ALLOW_NETWORK=1")
    assert time.perf_counter() - started < 60  # no download retries


def test_dry_run_prints_the_plan_without_loading(invarlock_project, tiny_gpt2_dir: Path) -> None:
    """In a subprocess: what the process imported is part of the claim."""
    proj = invarlock_project(
        CONFIG.format(model=tiny_gpt2_dir, order="[invariants, spectral]")
    ).path
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
    listing = CliOutcome(["run"], result.code, result.out, result.err)
    assert listing.row("2")[1:4] == ["spectral", "builtin", "invarlock.guards.plugin"]
    assert listing.row("2")[4].startswith("tier='balanced', max_rel_change=None")
    assert listing.row("—")[1:] == ["rmt", "", "", "skipped: not in guards.order"]
    assert not (proj / "runs").exists()
    assert result.heavy_imports == [] or "transformers" not in ",".join(result.heavy_imports)

    as_json = run_cli("run", "-c", "config.yaml", "--dry-run", "--json", cwd=proj)
    plan = as_json.json()
    assert [g["name"] for g in plan["guards"]] == ["invariants", "spectral"]
    assert plan["model"]["adapter_resolved"] == "hf_causal"


CHECKING_ADAPTER = """
from invarlock import hookimpl
from invarlock.core.api import ModelAdapter
from invarlock.core.errors import ConfigError


class Picky(ModelAdapter):
    name = "picky"

    def check(self, model_id, **options):
        raise ConfigError(f"picky refuses {model_id!r} with {sorted(options)}")

    def load_model(self, model_id, device="auto", **options):
        raise AssertionError("a refused model must never load")

    def describe(self, model):
        return {}


@hookimpl
def invarlock_register_adapters(register):
    register(Picky)
"""


def test_dry_run_asks_the_adapter_to_check_before_any_load(
    invarlock_project, tiny_gpt2_dir: Path
) -> None:
    """An unknown ``model:`` option and an adapter's own ``check`` fail at ``--dry-run``."""
    config = CONFIG.format(model=tiny_gpt2_dir, order="[invariants]")
    proj = invarlock_project(config.replace("device: cpu}", "device: cpu, torch_dtype: fp16}"))
    proj.run("--dry-run").assert_exit(2).assert_err("'torch_dtype'", "use 'dtype'")
    assert not (proj.path / "runs").exists()

    picky = config.replace("device: cpu}", "device: cpu, adapter: picky, level: 3}")
    proj = invarlock_project(picky, plugins=CHECKING_ADAPTER)
    proj.run("--dry-run").assert_exit(2).assert_err("picky refuses", "['level']")
    proj.run().assert_exit(2).assert_err("picky refuses")
    assert not (proj.path / "runs").exists()


SNAPSHOT_DISK = "output.snapshot=disk"


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_run_restores_and_exits_130_or_143(
    invarlock_project, tmp_path: Path, tiny_gpt2_dir: Path, signum: int, code: int
) -> None:
    """A real SIGINT or SIGTERM while a guard is validating; the disk snapshot goes too."""
    marker = tmp_path / "validating"
    plugin = CAPTURE_GUARD + (
        "\nimport time, pathlib\n"
        "def _slow(self, model, adapter, context):\n"
        f"    pathlib.Path({str(marker)!r}).write_text('x')\n"
        "    time.sleep(120)\n"
        "Capture.validate = _slow\n"
    )
    proj = invarlock_project(CONFIG.format(model=tiny_gpt2_dir, order="[capture]"), plugin).path
    proc = subprocess.Popen(
        [sys.executable, "-m", "invarlock", "run", "-c", "config.yaml", "--set", SNAPSHOT_DISK],
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
    os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    report = json.loads(next((proj / "runs").glob("*/report.json")).read_text())
    assert report["status"] == "interrupted"
    assert report["decision"]["model_restored"] is True
    assert report["snapshot"]["verified"] is True
    assert report["integrity"]["verified"] is True
    written = sorted(p.name for p in next((proj / "runs").iterdir()).iterdir())
    assert [name for name in written if name != "report.html"] == ["events.jsonl", "report.json"]
