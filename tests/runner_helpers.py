"""Build a small project (config + optional local plugin file) and run the real pipeline
in-process on a real tiny model saved on disk."""

from __future__ import annotations

import contextlib
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invarlock.plugins import PluginManager, Selection
from invarlock.runner.config import load_config
from invarlock.runner.report import RunReport
from invarlock.runner.runner import Runner


@dataclass
class Outcome:
    report: RunReport
    manager: PluginManager
    project: Path

    @property
    def local(self) -> Any:
        """The imported local plugin module (its globals hold what the guards captured)."""
        for info in self.manager.plugins:
            if info.origin.value == "local" and info.obj is not None:
                return info.obj
        raise AssertionError("no local plugin module was loaded")

    @property
    def run_dir(self) -> Path:
        return Path(self.report.run_dir)


def make_project(tmp_path: Path, config: str, plugins: str | None = None) -> Path:
    project = tmp_path / "project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (project / "config.yaml").write_text(textwrap.dedent(config))
    if plugins is not None:
        (project / "invarlock_plugins.py").write_text(textwrap.dedent(plugins))
    return project


def run_project(
    tmp_path: Path, config: str, plugins: str | None = None, overrides: tuple[str, ...] = ()
) -> Outcome:
    project = make_project(tmp_path, config, plugins)
    with contextlib.chdir(project):  # relative paths (output.dir) resolve like on the CLI
        run_config = load_config(project / "config.yaml", overrides)
        selection = Selection.build(env={}, local_start=project)
        manager = PluginManager(selection).load()
        report = Runner(run_config, manager).execute()
    return Outcome(report, manager, project)


def state_dict_bits(model: Any) -> dict[str, bytes]:
    """Every tensor of the model as raw bytes: equality means bit-exact equality."""
    return {
        name: tensor.detach()
        .cpu()
        .contiguous()
        .view(-1)
        .view(__import__("torch").uint8)
        .numpy()
        .tobytes()
        for name, tensor in model.state_dict().items()
    }


def load_fresh(model_dir: Path) -> Any:
    from invarlock.adapters import HF_Causal_Adapter

    return HF_Causal_Adapter().load_model(str(model_dir), device="cpu")


CAPTURE_GUARD = '''
from invarlock import hookimpl
from invarlock.core.api import Guard

CAPTURED = {}


class Capture(Guard):
    """Keeps a reference to the model and answers what RESULT says."""

    name = "capture"
    RESULT = {"passed": True, "action": "continue", "message": "ok"}

    def prepare(self, model, adapter, calib, policy):
        CAPTURED["model"] = model
        return {"ready": True}

    def validate(self, model, adapter, context):
        CAPTURED["context"] = context
        return self.RESULT


@hookimpl
def invarlock_register_guards(register):
    register(Capture)
'''
