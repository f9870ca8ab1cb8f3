"""Inject each fault of ``catalog.FAULTS`` into a real ``invarlock run`` (the CLI, in-process,
on a tiny GPT-2 saved on disk) and check what the user sees, the exit code, report.json,
the whole model afterwards and that no partial or stray file is left."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import fault_probe
import pytest
from catalog import FAULTS, GUARD, RECORDER, Fault, hook
from click.testing import CliRunner

from invarlock.cli import cli
from invarlock.plugins.manager import PluginManager
from invarlock.testing import load_model, weight_bits

#: Files a finished run may leave in its directory.
RUN_FILES = {"report.json", "events.jsonl", "report.html"}


@pytest.fixture(scope="module")
def load_bits(tiny_gpt2_dir: Path) -> dict[str, bytes]:
    return weight_bits(load_model(tiny_gpt2_dir))


def _unsafe_pickle(project: Path, tiny_gpt2_dir: Path) -> Path:
    import shutil

    import torch

    target = project / "pickled"
    shutil.copytree(tiny_gpt2_dir, target)
    (target / "model.safetensors").unlink()

    class Evil:
        def __reduce__(self) -> Any:
            return (os.system, ("true",))

    torch.save({"transformer.wte.weight": Evil()}, target / "pytorch_model.bin")
    return target


def _prepare(fault: Fault, tmp_path: Path, model_dir: Path, monkeypatch: Any) -> Path:
    """Project layout: pyproject.toml (+ the recorder plugin) at the root; the config and
    the fault's plugin in ``sub/`` (plugin name ``local:sub/invarlock_plugins.py``)."""
    project = tmp_path / "project"
    sub = project / "sub"
    sub.mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    if fault.recorder:
        (project / "invarlock_plugins.py").write_text(RECORDER)
    plugin = fault.plugin
    setup = fault.setup or ""
    if setup.startswith("hook:"):
        _, name, args = setup.split(":")
        plugin = GUARD + hook(name, args, f"raise RuntimeError('{name} broke')")
    if plugin is not None:
        (sub / "invarlock_plugins.py").write_text(plugin)
    if setup == "unsafe_pickle":
        model_dir = _unsafe_pickle(project, model_dir)
    config = fault.config.format(model=model_dir, snapshot=fault.snapshot)
    if fault.config_bytes is not None:
        (sub / "config.yaml").write_bytes(fault.config_bytes)
    else:
        (sub / "config.yaml").write_text(config)
    if setup == "no_extra_copies":
        monkeypatch.setattr("invarlock.runner.integrity.EXTRA_COPY_MAX_BYTES", 0)
    elif setup == "output_file":
        (sub / "taken").write_text("a file where the output directory should be\n")
    elif setup == "chmod_666":
        (sub / "invarlock_plugins.py").chmod(0o666)
    elif setup == "chmod_dir_777":
        sub.chmod(0o777)
    return project


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_fault(
    fault: Fault,
    tmp_path: Path,
    tiny_gpt2_dir: Path,
    load_bits: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in [k for k in os.environ if k.startswith("INVARLOCK_")]:
        monkeypatch.delenv(key)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    fault_probe.reset()
    real_load = PluginManager.load_model

    def observed_load(self: PluginManager, *args: Any, **kwargs: Any) -> Any:
        loaded = real_load(self, *args, **kwargs)
        fault_probe.MODELS.append(loaded.model)
        return loaded

    monkeypatch.setattr(PluginManager, "load_model", observed_load)
    project = _prepare(fault, tmp_path, tiny_gpt2_dir, monkeypatch)
    sub = project / "sub"
    before = _files(project)
    monkeypatch.chdir(sub)
    umask = os.umask(0o027) if fault.setup == "umask_027" else None
    try:
        result = CliRunner().invoke(cli, ["run", "-c", "config.yaml", *fault.args])
    finally:
        if umask is not None:
            os.umask(umask)
        sub.chmod(0o755)
    seen = result.stdout + result.stderr

    # what the user sees, and the exit code
    assert fault.sees in seen, seen
    assert result.exit_code == fault.code, seen
    assert ("Traceback" in seen) is fault.traceback, seen

    # report.json: written, decided, consistent with the exit code
    runs = sub / "runs"
    run_dirs = list(runs.iterdir()) if runs.exists() else []
    if not fault.run_dir:
        assert not run_dirs, "a rejected config must not create a run directory"
    else:
        assert len(run_dirs) == 1, run_dirs
        report = json.loads((run_dirs[0] / "report.json").read_text())
        assert report["status"] != "running" and report["exit_code"] == fault.code
        for key, want in fault.report.items():
            value: Any = report
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            assert value == want, (key, value)
        # no partial or stray file: exactly the run's own files (and an exported model)
        for path in run_dirs[0].rglob("*"):
            relative = path.relative_to(run_dirs[0])
            assert str(relative) in RUN_FILES or relative.parts[0] == "model", relative
        if "integrity" in report:
            assert report["integrity"]["algorithm"] == "xxh3-128"
        if fault.setup == "umask_027":
            assert (run_dirs[0] / "report.json").stat().st_mode & 0o777 == 0o640
        events = [json.loads(line) for line in (run_dirs[0] / "events.jsonl").open()]
        if fault.setup and fault.setup.startswith("hook:"):
            errors = [e for e in events if e["event"] == "hook_error"]
            assert errors and errors[0]["plugin"] == "local:sub/invarlock_plugins.py"
            assert any(fault.sees in w for w in report["warnings"]) or fault.code != 0
    after = _files(project) - before
    stray = {p for p in after if not p.startswith("sub/runs")}
    assert not stray, stray

    # every hook implementation ran, and run_finish came last for every started run
    if fault.recorder and fault.model != "unloaded":
        assert "invarlock_run_finish" in fault_probe.CALLED
        assert fault_probe.CALLED[-1] == "invarlock_run_finish"
    if fault.setup and fault.setup.startswith("hook:"):
        name = fault.setup.split(":")[1]
        assert name in fault_probe.CALLED, "the other plugin's implementation was skipped"

    # the whole model afterwards, hashed independently of the runner
    if fault.model == "unloaded":
        assert not fault_probe.MODELS
        return
    assert fault_probe.MODELS, "the model was never loaded"
    bits = weight_bits(fault_probe.MODELS[0])
    differ = sorted(name for name in bits if bits[name] != load_bits[name])
    if fault.model == "restored":
        assert not differ, differ
    elif fault.model == "edited":
        assert differ
    else:
        changed = set(fault.changed)
        assert {n for n in differ if n != "lm_head.weight"} == changed, differ
