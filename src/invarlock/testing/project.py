"""A throw-away invarlock project and the real CLI run inside this process.

:class:`Project` writes a config and local plugin files into a directory (a project root:
it holds ``pyproject.toml``) and runs ``invarlock run`` / ``invarlock plugins`` through the
real click command, in-process, from that directory. Each call returns a :class:`CliOutcome`
(exit code, stdout, stderr) or a :class:`RunOutcome` (plus the report, the run directory and
the events), with assertion helpers whose failures show the command's output.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Environment every in-process command runs with: no third-party autoload, no hub access.
#: ``None`` removes the variable for the duration of the command.
ISOLATED_ENV: dict[str, str | None] = {
    "INVARLOCK_DISABLE_PLUGIN_AUTOLOAD": "1",
    "INVARLOCK_PLUGINS": None,
    "INVARLOCK_DEBUG_TRACE": None,
    "INVARLOCK_ALLOW_NETWORK": None,
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "COLUMNS": None,
}


@dataclass
class CliOutcome:
    """One in-process ``invarlock`` command."""

    args: list[str]
    code: int
    out: str
    err: str
    #: Modules imported from the project's files during the command, by module name.
    modules: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def local(self) -> Any:
        """The project's top-level ``invarlock_plugins.py`` module as the command imported it
        (its globals hold whatever the plugin recorded)."""
        for name, module in self.modules.items():
            if name == "_invarlock_local_invarlock_plugins_py":
                return module
        raise AssertionError(f"no local plugin file was imported\n{self}")

    def json(self) -> Any:
        """stdout parsed as the one JSON document ``--json`` promises."""
        try:
            return json.loads(self.out)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"stdout is not one JSON document ({exc}):\n{self}") from None

    def assert_exit(self, code: int) -> CliOutcome:
        assert self.code == code, f"expected exit code {code}, got {self.code}\n{self}"
        return self

    def assert_ok(self) -> CliOutcome:
        return self.assert_exit(0)

    def assert_out(self, *fragments: str) -> CliOutcome:
        """Every fragment appears in stdout."""
        for fragment in fragments:
            assert fragment in self.out, f"{fragment!r} not in stdout\n{self}"
        return self

    def assert_err(self, *fragments: str) -> CliOutcome:
        """Every fragment appears in stderr."""
        for fragment in fragments:
            assert fragment in self.err, f"{fragment!r} not in stderr\n{self}"
        return self

    def row(self, name: str) -> list[str]:
        """The cells of the listing-table row whose first cell is ``name``."""
        for line in self.out.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells and cells[0] == name:
                return cells
        raise AssertionError(f"no row {name!r}\n{self}")

    def __str__(self) -> str:
        return (
            f"$ invarlock {' '.join(self.args)}\nexit code: {self.code}\n"
            f"--- stdout ---\n{self.out}--- stderr ---\n{self.err}"
        )


@dataclass
class RunOutcome(CliOutcome):
    """An ``invarlock run``: the command's output plus what it wrote."""

    run_dir: Path | None = None
    report: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str | None:
        return None if self.report is None else self.report["status"]

    def assert_status(self, status: str, code: int | None = None) -> RunOutcome:
        """``kept``, ``warned``, ``rolled_back``, ``error`` or ``interrupted``."""
        assert self.status == status, f"expected status {status!r}, got {self.status!r}\n{self}"
        if code is not None:
            self.assert_exit(code)
        return self

    def assert_kept(self) -> RunOutcome:
        self.assert_exit(0)
        assert self.status in ("kept", "warned"), f"status {self.status!r}\n{self}"
        return self

    def assert_rolled_back(self) -> RunOutcome:
        return self.assert_status("rolled_back", 1)

    def guard(self, name: str, phase: str = "validate") -> dict[str, Any]:
        """The report's entry for guard ``name`` in ``phase``."""
        for entry in (self.report or {}).get("guards", []):
            if entry["guard"] == name and entry["phase"] == phase:
                return entry
        raise AssertionError(f"no {phase} outcome for guard {name!r} in the report\n{self}")

    def hooks_called(self) -> list[str]:
        """Hook names in the order the events log recorded them."""
        return [e["hook"] for e in self.events if e.get("event") == "hook"]


class Project:
    """A project directory with a config and local plugin files; runs the CLI in it."""

    def __init__(self, path: Path, model_dir: Path | None = None, *, root: bool = True) -> None:
        """``root``: mark ``path`` as a project root (a ``pyproject.toml``), which bounds the
        search for local plugin files; ``False`` runs commands in ``path`` as it is."""
        self.path = path
        self.model_dir = model_dir
        self.path.mkdir(parents=True, exist_ok=True)
        marker = self.path / "pyproject.toml"
        if root and not marker.exists():
            marker.write_text("[project]\nname = 'invarlock-test-project'\n")

    def at(self, relative: str) -> Project:
        """The same project, with commands run from ``relative`` (a subdirectory)."""
        return Project(self.path / relative, self.model_dir, root=False)

    def write(self, relative: str, text: str) -> Path:
        """Write ``text`` (dedented) to ``relative`` inside the project; returns the path."""
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return target

    def write_config(self, config: str | Mapping[str, Any], name: str = "config.yaml") -> Path:
        """Write a config; without a ``model`` section it runs the tiny model on the CPU."""
        import yaml

        text = (
            yaml.safe_dump(dict(config), sort_keys=False)
            if isinstance(config, Mapping)
            else textwrap.dedent(config).lstrip("\n")
        )
        data = yaml.safe_load(text) or {}
        if isinstance(data, dict) and "model" not in data and self.model_dir is not None:
            model = {"model": {"id": str(self.model_dir), "device": "cpu"}}
            text = text.rstrip("\n") + "\n" + yaml.safe_dump(model, sort_keys=False)
        return self.write(name, text)

    def write_plugins(self, source: str, directory: str = ".") -> Path:
        """Write a local ``invarlock_plugins.py`` into ``directory`` of the project."""
        return self.write(f"{directory}/invarlock_plugins.py", source)

    def cli(self, *args: str, env: Mapping[str, str | None] | None = None) -> CliOutcome:
        """``invarlock ARGS`` in-process, from the project directory, isolated environment."""
        code, out, err, modules = self._invoke(list(args), env)
        return CliOutcome(list(args), code, out, err, modules)

    def plugins(self, *args: str, env: Mapping[str, str | None] | None = None) -> CliOutcome:
        """``invarlock plugins ARGS``."""
        return self.cli("plugins", *args, env=env)

    def run(
        self,
        *args: str,
        config: str = "config.yaml",
        env: Mapping[str, str | None] | None = None,
    ) -> RunOutcome:
        """``invarlock run -c CONFIG ARGS``; collects the new run directory's report and events."""
        before = set(self._reports())
        argv = ["run", "-c", config, *args]
        code, out, err, modules = self._invoke(argv, env)
        outcome = RunOutcome(argv, code, out, err, modules)
        created = sorted(set(self._reports()) - before, key=lambda p: p.stat().st_mtime)
        if created:
            outcome.run_dir = created[-1].parent
            outcome.report = json.loads(created[-1].read_text(encoding="utf-8"))
            events = outcome.run_dir / "events.jsonl"
            if events.is_file():
                outcome.events = [
                    json.loads(line) for line in events.read_text().splitlines() if line.strip()
                ]
        return outcome

    def _reports(self) -> list[Path]:
        return list(self.path.rglob("report.json"))

    def _invoke(
        self, argv: list[str], env: Mapping[str, str | None] | None
    ) -> tuple[int, str, str, dict[str, Any]]:
        from click.testing import CliRunner

        from invarlock.cli import cli

        runner = CliRunner()
        environment = {**ISOLATED_ENV, **(env or {})}
        with contextlib.chdir(self.path), _forget_project_modules(self.path) as modules:
            result = runner.invoke(
                cli, argv, env=environment, catch_exceptions=False, prog_name="invarlock"
            )
        return result.exit_code, result.stdout, result.stderr, modules


@contextlib.contextmanager
def _forget_project_modules(root: Path) -> Iterator[dict[str, Any]]:
    """Undo what importing the project's local plugin files did to ``sys.path``/``sys.modules``,
    so the next project (or the next run of this one) imports its own files afresh. The
    yielded dict receives the forgotten modules (tests read what a local plugin recorded)."""
    path_before = list(sys.path)
    forgotten: dict[str, Any] = {}
    try:
        yield forgotten
    finally:
        sys.path[:] = path_before
        resolved = str(root.resolve())
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None) or ""
            if name.startswith("_invarlock_local_") or (
                file and os.path.realpath(file).startswith(resolved)
            ):
                forgotten[name] = sys.modules.pop(name)
