"""The hook contract lives in top-level ``hookspecs/`` and must import as
``invarlock.hookspecs`` from an editable install and from a wheel alike."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import tomllib

from invarlock.plugins.builtin import BUILTIN_PLUGINS

REPO = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(REPO / "src").parts)
        for p in (REPO / "src").rglob("__init__.py")
    } | {"invarlock.hookspecs"}
    assert listed == found


def test_editable_install_maps_hookspecs() -> None:
    import invarlock.hookspecs

    assert Path(invarlock.hookspecs.__file__).resolve() == REPO / "hookspecs" / "__init__.py"


@pytest.mark.slow
def test_wheel_contains_the_contract_and_the_builtin_plugins(tmp_path: Path) -> None:
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "dist").glob("invarlock-0.1.0-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read("invarlock-0.1.0.dist-info/entry_points.txt").decode()
    assert "invarlock/hookspecs/__init__.py" in names
    assert "invarlock/core/api.py" in names
    assert "[pytest11]" in entry_points
    for group in ("invarlock.guards", "invarlock.adapters", "invarlock.evaluators"):
        assert f"[{group}]" not in entry_points  # built-ins load from BUILTIN_PLUGINS
    for module in BUILTIN_PLUGINS:
        assert module.replace(".", "/") + ".py" in names
    for data in ("persuasion.txt.gz", "northanger_abbey.txt.gz", "NOTICE"):
        assert f"invarlock/data/austen/{data}" in names

    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    # -S: no site hooks, so the editable finder of this environment stays out of the way.
    probe = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            "import invarlock.hookspecs as h; print(h.__file__)",
        ],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{target}:{sysconfig.get_paths()['purelib']}"},
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.splitlines()[0].startswith(str(target / "invarlock" / "hookspecs"))
    corpus = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            "from invarlock.data.corpus import corpus_text; print(corpus_text('persuasion')[:10])",
        ],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{target}:{sysconfig.get_paths()['purelib']}"},
    )
    assert (corpus.returncode, corpus.stdout) == (0, "Persuasion\n"), corpus.stderr
