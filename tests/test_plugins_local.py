"""Local plugin files: ``invarlock_plugins.py`` next to a config and in its parents, up to
the project root and never above it. In-process through the shipped ``invarlock_project``."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import run_cli

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


def local_plugin(name: str) -> str:
    return LOCAL_GUARD.format(cls=name.title().replace("_", ""), name=name)


CONFIG = "configs/exp/config.yaml"


def make_project(invarlock_project):
    """outside/ (the fixture's directory, a local file above the root) ⊃ project/
    (pyproject.toml: the root) ⊃ configs/exp/ (the config)."""
    outside = invarlock_project(
        files={
            "invarlock_plugins.py": local_plugin("above_root"),
            "project/pyproject.toml": "[project]\nname = 'demo'\n",
            "project/invarlock_plugins.py": local_plugin("at_root"),
            "project/configs/exp/invarlock_plugins.py": local_plugin("next_to_config"),
            f"project/{CONFIG}": "model: {id: some-model}\n",
        }
    )
    return outside, outside.at("project")


def test_search_covers_config_dir_and_parents_up_to_the_project_root(invarlock_project) -> None:
    _, project = make_project(invarlock_project)
    doc = project.plugins("guards", "-c", CONFIG, "--json").assert_ok().json()
    names = {c["name"]: c for c in doc["components"]}
    assert names["next_to_config"]["origin"] == "local"
    assert names["next_to_config"]["plugin"] == "local:configs/exp/invarlock_plugins.py"
    assert names["at_root"]["plugin"] == "local:invarlock_plugins.py"
    assert "above_root" not in names  # above the project root: never loaded
    assert doc["local_plugin_root"] == str(project.path.resolve())
    table = project.plugins("guards", "-c", CONFIG).assert_ok()
    assert table.row("next_to_config")[1:] == ["Local", "Guard", "—", "—", "✅ Ready"]


def test_without_config_the_current_directory_is_searched(invarlock_project) -> None:
    outside, project = make_project(invarlock_project)
    result = project.at("configs/exp").plugins("guards", "--json").assert_ok()
    names = {c["name"] for c in result.json()["components"]}
    assert {"next_to_config", "at_root"} <= names
    plain = outside.plugins("guards", "--json").assert_ok()  # the outer root: its file only
    assert not {"next_to_config", "at_root"} & {c["name"] for c in plain.json()["components"]}


def test_no_local_plugins_switches_them_off(invarlock_project) -> None:
    _, project = make_project(invarlock_project)
    result = project.plugins("guards", "-c", CONFIG, "--no-local-plugins", "--json")
    names = {c["name"] for c in result.json()["components"]}
    assert not {"next_to_config", "at_root"} & names


def test_local_file_blocked_by_its_plugin_name(invarlock_project) -> None:
    _, project = make_project(invarlock_project)
    result = project.plugins("-c", CONFIG, "-p", "no:local:invarlock_plugins.py", "--json")
    status = {c["name"]: c["status"] for c in result.json()["components"]}
    assert status["next_to_config"] == "ready"
    assert status["local:invarlock_plugins.py"] == "blocked"
    assert "at_root" not in status


def test_broken_local_file_is_reported_and_others_load(invarlock_project) -> None:
    _, project = make_project(invarlock_project)
    project.write("configs/exp/invarlock_plugins.py", "def oops(:\n")
    result = project.plugins("-c", CONFIG, "--json").assert_ok()
    plugins = {p["name"]: p for p in result.json()["plugins"]}
    broken = plugins["local:configs/exp/invarlock_plugins.py"]
    assert broken["status"] == "error" and "SyntaxError" in broken["detail"]
    assert plugins["local:invarlock_plugins.py"]["status"] == "ready"


def test_local_guard_clashing_with_an_installed_one(invarlock_project) -> None:
    _, project = make_project(invarlock_project)
    project.write("configs/exp/invarlock_plugins.py", local_plugin("invariants"))
    result = project.plugins("guards", "-c", CONFIG, "--json").assert_ok()
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
