"""The plugin-workflow guide, followed literally: ``pip install -e`` the example package
(contrib/my_invarlock_plugin, whose code is the guide's), then every listing and
debugging command of the guide, then the guide's own test suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import clean_env, table_row

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "contrib" / "my_invarlock_plugin"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def sh(
    *command: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = clean_env(**(env or {}))
    environment["PATH"] = f"{BIN}{os.pathsep}{environment.get('PATH', '')}"
    return subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``pip install -e ./my_invarlock_plugin`` into this environment; uninstalled after."""
    workdir = tmp_path_factory.mktemp("walkthrough")
    shutil.copytree(EXAMPLE, workdir / "my_invarlock_plugin")
    install = sh(
        sys.executable, "-m", "pip", "install", "-q", "-e", "./my_invarlock_plugin", cwd=workdir
    )
    assert install.returncode == 0, install.stdout + install.stderr
    try:
        yield workdir / "my_invarlock_plugin"
    finally:
        sh(sys.executable, "-m", "pip", "uninstall", "-q", "-y", "my-invarlock-plugin")


def test_guards_listing_shows_the_ready_row(installed: Path) -> None:
    result = sh("invarlock", "plugins", "guards")
    assert result.returncode == 0, result.stderr
    assert table_row(result.stdout, "nan_check") == [
        "nan_check",
        "Plugin",
        "Guard",
        "—",
        "0.1.0",  # the distribution's version: the class declares none
        "✅ Ready",
    ]
    assert table_row(result.stdout, "threshold")[5] == "✅ Ready"


def test_list_json_and_verbose(installed: Path) -> None:
    result = sh("invarlock", "plugins", "list", "--json")
    import json

    components = {c["name"]: c for c in json.loads(result.stdout)["components"]}
    nan = components["nan_check"]
    assert nan["distribution"] == "my-invarlock-plugin"
    assert nan["distribution_version"] == "0.1.0"
    assert nan["class"] == "my_plugin.my_guard:NaNCheckGuard"
    assert nan["parameters"][0]["name"] == "strict" and nan["parameters"][0]["default"] is True
    assert components["custom_format"]["kind"] == "adapter"
    assert components["custom_format"]["status"] == "ready"

    verbose = sh("invarlock", "plugins", "list", "--verbose")
    assert (
        "entry point   invarlock.guards: nan_check = my_plugin.my_guard:NaNCheckGuard"
        in verbose.stdout
    )
    assert "distribution  my-invarlock-plugin 0.1.0" in verbose.stdout
    guards_verbose = sh("invarlock", "plugins", "guards", "--verbose")
    assert "module        my_plugin.my_guard" in guards_verbose.stdout


def test_explain_custom_format(installed: Path) -> None:
    result = sh("invarlock", "plugins", "adapters", "--explain", "custom_format")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("custom_format — Adapter (Plugin): ✅ Ready")
    assert "Adapter for loading models in a custom format." in result.stdout
    assert "model:\n  adapter: custom_format" in result.stdout
    assert "invarlock_load_model" in result.stdout


def test_debug_trace_and_import_check(installed: Path) -> None:
    result = sh("invarlock", "plugins", "list", env={"INVARLOCK_DEBUG_TRACE": "1"})
    assert result.returncode == 0
    assert (
        "entry point invarlock.guards: nan_check = my_plugin.my_guard:NaNCheckGuard "
        "(my-invarlock-plugin 0.1.0)" in result.stderr
    )
    check = sh(sys.executable, "-c", "from my_plugin.my_guard import NaNCheckGuard; print('OK')")
    assert check.stdout.strip() == "OK"


def test_the_guides_test_suite_passes(installed: Path) -> None:
    result = sh(
        sys.executable,
        "-m",
        "pytest",
        "tests/test_threshold_guard.py",
        "-v",
        "-p",
        "no:cacheprovider",
        cwd=installed,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout
    own = sh(sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", cwd=installed)
    assert own.returncode == 0, own.stdout + own.stderr


def test_step_5_config_runs(installed: Path, tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    """The guide's "Add to Config" block, then ``invarlock run -c config.yaml``."""
    import json

    (tmp_path / "config.yaml").write_text(
        f"model:\n  id: {tiny_gpt2_dir}\n  device: cpu\n"
        "guards:\n"
        '  order: ["invariants", "nan_check", "spectral", "variance"]\n'
        "  nan_check:\n"
        "    strict: true\n"
    )
    result = sh("invarlock", "run", "-c", "config.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(next((tmp_path / "runs").glob("*/report.json")).read_text())
    nan = [g for g in report["guards"] if g["guard"] == "nan_check"]
    assert [g["phase"] for g in nan] == ["prepare", "validate"]
    assert nan[0]["options"] == {"strict": True} and nan[0]["origin"] == "plugin"
    assert report["status"] == "kept"
