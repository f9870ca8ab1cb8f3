"""``invarlock plugins new``: as generated, each plugin installs, passes its own tests
(which use the shipped fixtures) and is listed by ``invarlock plugins``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def sh(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVARLOCK_")}
    env.update(OMP_NUM_THREADS="1", PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    if "INVARLOCK_CACHE_DIR" in os.environ:  # the tiny-model cache the fixtures share
        env["INVARLOCK_CACHE_DIR"] = os.environ["INVARLOCK_CACHE_DIR"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_new_rejects_bad_names_and_never_overwrites(invarlock_project) -> None:
    project = invarlock_project()
    project.plugins("new", "guard", "Bad-Name").assert_exit(2).assert_err("lower-case letters")
    project.plugins("new", "widget", "x").assert_exit(2).assert_err("unknown plugin kind")
    project.plugins("new", "guard", "twice").assert_ok().assert_out("wrote ")
    before = (project.path / "invarlock-twice" / "src/invarlock_twice/guard.py").read_text()
    project.plugins("new", "guard", "twice").assert_exit(2).assert_err("nothing was written")
    assert (project.path / "invarlock-twice" / "src/invarlock_twice/guard.py").read_text() == before


def test_generated_guard_has_entry_point_build_system_and_args_docstring(invarlock_project) -> None:
    import tomllib

    project = invarlock_project()
    project.plugins("new", "guard", "max_shift").assert_ok()
    root = project.path / "invarlock-max-shift"
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["build-system"]["build-backend"] == "setuptools.build_meta"
    assert meta["project"]["entry-points"]["invarlock.guards"] == {
        "max_shift": "invarlock_max_shift.guard:MaxShiftGuard"
    }
    assert (
        "    Args:\n        max_rel_change:"
        in (root / "src/invarlock_max_shift/guard.py").read_text()
    )
    assert "run_guard" in (root / "tests/test_max_shift.py").read_text()


def test_local_plugin_file_passes_its_tests(invarlock_project) -> None:
    project = invarlock_project()
    project.plugins("new", "local", "tiny_check").assert_ok()
    listed = project.plugins("guards", "--json").assert_ok().json()["components"]
    tiny = next(c for c in listed if c["name"] == "tiny_check")
    assert (tiny["origin"], tiny["kind"], tiny["status"]) == ("local", "guard", "ready")
    tests = sh(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=project.path
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "name", "group"),
    [
        ("guard", "max_shift", "guard"),
        ("adapter", "my_loader", "adapter"),
        ("hooks", "outcome_log", "hooks"),
    ],
)
def test_generate_install_test_list(tmp_path: Path, kind: str, name: str, group: str) -> None:
    started = time.perf_counter()
    new = sh(sys.executable, "-m", "invarlock", "plugins", "new", kind, name, cwd=tmp_path)
    assert new.returncode == 0, new.stderr
    root = tmp_path / f"invarlock-{name.replace('_', '-')}"
    distribution = root.name
    install = sh(
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-e",
        str(root),
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    try:
        tests = sh(
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=root
        )
        assert tests.returncode == 0, tests.stdout + tests.stderr
        seconds = time.perf_counter() - started
        listing = sh(sys.executable, "-m", "invarlock", "plugins", "--json", cwd=tmp_path)
        components = {c["name"]: c for c in json.loads(listing.stdout)["components"]}
        assert components[name]["kind"] == group and components[name]["status"] == "ready"
        assert components[name]["distribution"] == distribution
        print(f"plugins new {kind} → passing tests: {seconds:.1f} s")  # shown with -s / -rP
    finally:
        sh(sys.executable, "-m", "pip", "uninstall", "-q", "-y", distribution, cwd=tmp_path)
