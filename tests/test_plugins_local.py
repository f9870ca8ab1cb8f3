"""Local plugin files: ``invarlock_plugins.py`` next to a config and in its parents, up to
the project root and never above it."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import run_cli, table_row

LOCAL_GUARD = '''
from invarlock import hookimpl
from invarlock.core.api import Guard


class {cls}(Guard):
    """A project-specific guard."""

    name = "{name}"

    def validate(self, model, adapter, context):
        return {{"passed": True, "action": "continue", "message": "ok"}}


@hookimpl
def invarlock_register_guards(register):
    register({cls})
'''


def write_local(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "invarlock_plugins.py"
    path.write_text(LOCAL_GUARD.format(cls=name.title().replace("_", ""), name=name))
    return path


def make_project(tmp_path: Path) -> tuple[Path, Path]:
    """outside/ (a local file above the root) ⊃ project/ (pyproject.toml) ⊃ configs/exp/."""
    outside = tmp_path / "outside"
    project = outside / "project"
    config_dir = project / "configs" / "exp"
    config_dir.mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    write_local(outside, "above_root")
    write_local(project, "at_root")
    write_local(config_dir, "next_to_config")
    config = config_dir / "config.yaml"
    config.write_text("model: {id: some-model}\n")
    return project, config


def test_search_covers_config_dir_and_parents_up_to_the_project_root(tmp_path: Path) -> None:
    project, config = make_project(tmp_path)
    result = run_cli("plugins", "guards", "-c", str(config), "--json", cwd=tmp_path)
    assert result.code == 0, result.err
    doc = result.json()
    names = {c["name"]: c for c in doc["components"]}
    assert names["next_to_config"]["origin"] == "local"
    assert names["next_to_config"]["plugin"] == "local:configs/exp/invarlock_plugins.py"
    assert names["at_root"]["plugin"] == "local:invarlock_plugins.py"
    assert "above_root" not in names  # above the project root: never loaded
    assert doc["local_plugin_root"] == str(project.resolve())
    table = run_cli("plugins", "guards", "-c", str(config), cwd=tmp_path)
    assert table_row(table.out, "next_to_config")[1:] == ["Local", "Guard", "—", "—", "✅ Ready"]


def test_without_config_the_current_directory_is_searched(tmp_path: Path) -> None:
    _, config = make_project(tmp_path)
    result = run_cli("plugins", "guards", "--json", cwd=config.parent)
    names = {c["name"] for c in result.json()["components"]}
    assert {"next_to_config", "at_root"} <= names
    plain = run_cli("plugins", "guards", "--json", cwd=tmp_path)  # no root: only tmp_path
    assert not {"next_to_config", "at_root", "above_root"} & {
        c["name"] for c in plain.json()["components"]
    }


def test_no_local_plugins_switches_them_off(tmp_path: Path) -> None:
    _, config = make_project(tmp_path)
    result = run_cli("plugins", "guards", "-c", str(config), "--no-local-plugins", "--json")
    names = {c["name"] for c in result.json()["components"]}
    assert not {"next_to_config", "at_root"} & names


def test_local_file_blocked_by_its_plugin_name(tmp_path: Path) -> None:
    _, config = make_project(tmp_path)
    result = run_cli("plugins", "-c", str(config), "-p", "no:local:invarlock_plugins.py", "--json")
    status = {c["name"]: c["status"] for c in result.json()["components"]}
    assert status["next_to_config"] == "ready"
    assert status["local:invarlock_plugins.py"] == "blocked"
    assert "at_root" not in status


def test_broken_local_file_is_reported_and_others_load(tmp_path: Path) -> None:
    _, config = make_project(tmp_path)
    (config.parent / "invarlock_plugins.py").write_text("def oops(:\n")
    result = run_cli("plugins", "-c", str(config), "--json")
    assert result.code == 0
    plugins = {p["name"]: p for p in result.json()["plugins"]}
    broken = plugins["local:configs/exp/invarlock_plugins.py"]
    assert broken["status"] == "error" and "SyntaxError" in broken["detail"]
    assert plugins["local:invarlock_plugins.py"]["status"] == "ready"


def test_local_guard_clashing_with_an_installed_one(tmp_path: Path) -> None:
    _, config = make_project(tmp_path)
    write_local(config.parent, "invariants")
    result = run_cli("plugins", "guards", "-c", str(config), "--json")
    clash = [c for c in result.json()["components"] if c["name"] == "invariants"]
    assert len(clash) == 2
    assert all("name clash" in c["detail"] for c in clash)
    assert any("configs/exp/invarlock_plugins.py" in c["detail"] for c in clash)


def test_verbose_listing_shows_local_files_loaded_and_refused(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "open").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (root / "invarlock_plugins.py").write_text('"""Root hooks."""\n')
    shared = root / "open" / "invarlock_plugins.py"
    shared.write_text('"""Written by anyone."""\n')
    shared.chmod(0o666)
    config = root / "open" / "config.yaml"
    config.write_text("model: {id: x}\n")
    result = run_cli("plugins", "--verbose", "-c", str(config), cwd=root)
    assert result.code == 0, result.err
    assert f"Local plugin files (searched {root / 'open'} up to {root}):" in result.out
    assert f"{root / 'invarlock_plugins.py'}  loaded" in result.out
    assert f"{shared}  refused, not imported: writable by other users" in result.out
