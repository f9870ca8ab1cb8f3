"""Discovery, validation and isolation of plugins, through the real CLI.

Each test installs real distributions (``.dist-info`` + ``entry_points.txt``) into a
temporary site directory that the CLI subprocess gets on ``PYTHONPATH``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import listed, run_cli, state

from invarlock.plugins.builtin import BUILTIN_PLUGINS
from invarlock.testing.distributions import write_distribution

NAN_GUARD = '''
from invarlock.core.api import Guard


class NaNGuard(Guard):
    """Fails on NaN."""

    name = "{name}"

    def __init__(self, strict: bool = True):
        self.strict = strict

    def validate(self, model, adapter, context):
        return {{"passed": True, "action": "continue", "message": "ok"}}
'''


def guard_dist(site: Path, dist: str, module: str, name: str = "nan_check") -> None:
    write_distribution(
        site,
        dist,
        entry_points={"invarlock.guards": {name: f"{module}:NaNGuard"}},
        files={f"{module}.py": NAN_GUARD.format(name=name)},
    )


def test_builtins_are_listed_ready_and_come_from_the_module_tuple(tmp_path: Path) -> None:
    # Stale metadata of invarlock itself (old built-in entry points) changes nothing.
    write_distribution(
        tmp_path,
        "invarlock",
        entry_points={"invarlock.guards": {"invariants": "gone_mod:Gone"}},
        files={"gone_mod.py": "raise SystemExit('must never be imported')\n"},
    )
    result = run_cli("plugins", "--json", site=tmp_path)
    assert result.code == 0, result.err
    doc = result.json()
    by_name = {(c["kind"], c["name"]): c for c in doc["components"]}
    for kind, name in [
        ("adapter", "hf_causal"),
        ("adapter", "auto"),
        ("guard", "invariants"),
        ("guard", "spectral"),
        ("guard", "rmt"),
        ("guard", "variance"),
        ("evaluator", "perplexity"),
        ("edit", "quant_rtn"),
        ("edit", "noop"),
    ]:
        component = by_name[(kind, name)]
        assert component["origin"] == "builtin"
        assert component["status"] == "ready", component
    invariants = by_name[("guard", "invariants")]
    assert (invariants["plugin"], invariants["entry_point"]) == ("invarlock.guards.plugin", None)
    assert invariants["class"] == "invarlock.guards.invariants:InvariantsGuard"
    assert {"hook": "invarlock_register_guards", "flags": []} in invariants["hooks"]
    assert by_name[("edit", "quant_rtn")]["plugin"] is None  # the edit registry, not a plugin
    builtin = [p for p in doc["plugins"] if p["origin"] == "builtin"]
    assert [p["name"] for p in builtin] == list(BUILTIN_PLUGINS)
    assert doc["problems"] == []


def test_no_builtin_travels_as_an_entry_point() -> None:
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    for group in ("invarlock.guards", "invarlock.adapters", "invarlock.evaluators"):
        assert f'[project.entry-points."{group}"]' not in pyproject


def test_broken_plugin_is_listed_with_its_error_and_others_keep_working(tmp_path: Path) -> None:
    write_distribution(
        tmp_path,
        "broken-plugin",
        entry_points={"invarlock.guards": {"broken": "broken_mod:Guard"}},
        files={"broken_mod.py": "raise RuntimeError('boom at import')\n"},
    )
    guard_dist(tmp_path, "good-plugin", "good_mod", name="good")
    result = run_cli("plugins", "guards", "--json", site=tmp_path)
    assert result.code == 0, result.err
    status, detail = state(result, "broken")
    assert status == "error"
    assert detail.startswith("import failed: RuntimeError: boom at import")
    assert "broken_mod.py:1" in detail
    assert state(result, "good") == ("ready", "")

    strict = run_cli("plugins", "guards", "--strict-plugins", site=tmp_path)
    assert strict.code == 3
    assert "broken" in strict.err and "boom at import" in strict.err


def test_missing_dependency_is_reported_as_needs(tmp_path: Path) -> None:
    write_distribution(
        tmp_path,
        "needy-plugin",
        entry_points={"invarlock.adapters": {"needy": "needy_mod:Adapter"}},
        files={"needy_mod.py": "import not_installed_pkg_xyz\n"},
    )
    result = run_cli("plugins", "adapters", "--json", site=tmp_path)
    assert state(result, "needy") == ("needs", "not_installed_pkg_xyz")


@pytest.mark.parametrize(
    ("cls", "source", "expected"),
    [
        (
            "NotAGuard",
            "class NotAGuard:\n    name = 'odd'\n",
            "is not a subclass of invarlock.core.api.Guard",
        ),
        (
            "Needs",
            "from invarlock.core.api import Guard\n"
            "class Needs(Guard):\n    name = 'odd'\n"
            "    def __init__(self, limit):\n        self.limit = limit\n"
            "    def validate(self, model, adapter, context):\n        return {}\n",
            "cannot be constructed from its defaults: TypeError",
        ),
        (
            "Half",
            "from invarlock.core.api import Guard\nclass Half(Guard):\n    name = 'odd'\n",
            "cannot be constructed: abstract method(s) validate",
        ),
        (
            "Other",
            "from invarlock.core.api import Guard\nclass Other(Guard):\n    name = 'other'\n"
            "    def validate(self, model, adapter, context):\n        return {}\n",
            "entry point name 'odd' differs from Other.name 'other'",
        ),
    ],
)
def test_unusable_guard_classes_are_errors(
    tmp_path: Path, cls: str, source: str, expected: str
) -> None:
    write_distribution(
        tmp_path,
        "odd-plugin",
        entry_points={"invarlock.guards": {"odd": f"odd_mod:{cls}"}},
        files={"odd_mod.py": source},
    )
    result = run_cli("plugins", "guards", "--json", site=tmp_path)
    assert result.code == 0
    status, detail = state(result, "odd")
    assert status == "error" and expected in detail, detail


def test_name_clash_names_both_distributions_and_fails_a_run(tmp_path: Path) -> None:
    guard_dist(tmp_path, "first-plugin", "first_mod")
    guard_dist(tmp_path, "second-plugin", "second_mod")
    result = run_cli("plugins", "guards", "--json", site=tmp_path)
    clashing = [c for c in result.json()["components"] if c["name"] == "nan_check"]
    assert len(clashing) == 2
    for component in clashing:
        assert component["status"] == "error"
        assert "first-plugin 0.1.0" in component["detail"]
        assert "second-plugin 0.1.0" in component["detail"]

    config = tmp_path / "config.yaml"
    config.write_text("model: {id: missing-model}\nguards: {order: [nan_check]}\n")
    run = run_cli("run", "-c", str(config), "--dry-run", site=tmp_path, cwd=tmp_path)
    assert run.code == 3, run.err
    assert "name clash" in run.err and "first-plugin" in run.err and "second-plugin" in run.err


def test_misspelled_hook_suggests_the_real_one_with_file_and_line(tmp_path: Path) -> None:
    write_distribution(
        tmp_path,
        "typo-plugin",
        entry_points={"invarlock.hooks": {"typo": "typo_mod"}},
        files={
            "typo_mod.py": (
                "from invarlock import hookimpl\n\n"
                "@hookimpl\n"
                "def invarlock_guard_validat(guard_name, model, adapter, context):\n"
                "    return None\n"
            )
        },
    )
    result = run_cli("plugins", "hooks", "--json", site=tmp_path)
    status, detail = state(result, "typo")
    assert status == "error"
    assert "unknown hook 'invarlock_guard_validat'" in detail
    assert "did you mean 'invarlock_guard_validate'?" in detail
    assert "typo_mod.py:3" in detail or "typo_mod.py:4" in detail


def test_wrong_argument_name_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    write_distribution(
        tmp_path,
        "args-plugin",
        entry_points={"invarlock.hooks": {"args": "args_mod"}},
        files={"args_mod.py": ("def invarlock_edit_applied(run, edit_result):\n    pass\n")},
    )
    result = run_cli("plugins", "hooks", "--json", site=tmp_path)
    status, detail = state(result, "args")
    assert status == "error"
    assert "asks for argument 'edit_result'" in detail
    assert "its arguments are: run, result" in detail
    assert "args_mod.py:1" in detail


def test_block_with_p_no_and_autoload_switch(tmp_path: Path) -> None:
    guard_dist(tmp_path, "my-plugin", "nan_mod")
    blocked = run_cli("plugins", "guards", "--json", "-p", "no:nan_check", site=tmp_path)
    assert state(blocked, "nan_check") == ("blocked", "blocked by -p no:nan_check")

    env = {"INVARLOCK_DISABLE_PLUGIN_AUTOLOAD": "1"}
    off = run_cli("plugins", "guards", "--json", site=tmp_path, env=env)
    assert state(off, "nan_check") == (
        "blocked",
        "autoload disabled by INVARLOCK_DISABLE_PLUGIN_AUTOLOAD",
    )
    assert state(off, "invariants") == ("ready", "")  # built-ins always load

    allowed = run_cli(
        "plugins", "guards", "--json", site=tmp_path, env={**env, "INVARLOCK_PLUGINS": "nan_check"}
    )
    assert state(allowed, "nan_check") == ("ready", "")
    by_flag = run_cli("plugins", "guards", "--json", "-p", "nan_check", site=tmp_path, env=env)
    assert state(by_flag, "nan_check") == ("ready", "")


def test_builtin_can_be_blocked_by_the_same_name() -> None:
    result = run_cli("plugins", "guards", "--json", "-p", "no:invariants")
    assert state(result, "invariants") == ("blocked", "blocked by -p no:invariants")
    assert state(result, "spectral") == ("ready", "")
    assert result.json()["problems"] == []
    whole = run_cli("plugins", "--json", "-p", "no:invarlock.guards.plugin").json()
    assert not [c for c in whole["components"] if c["kind"] == "guard"]
    (module,) = [p for p in whole["plugins"] if p["name"] == "invarlock.guards.plugin"]
    assert module["status"] == "blocked"


def test_edit_entry_points_are_reported_as_not_supported(tmp_path: Path) -> None:
    write_distribution(
        tmp_path,
        "edit-plugin",
        entry_points={"invarlock.edits": {"gptq": "gptq_mod:GPTQ"}},
        files={"gptq_mod.py": "raise SystemExit('must never be imported')\n"},
    )
    result = run_cli("plugins", "edits", "--json", site=tmp_path)
    assert result.code == 0
    status, detail = state(result, "gptq")
    assert status == "error"
    assert detail.startswith("not supported: plugins add adapters and guards")
    assert listed(result, "gptq")["distribution"] == "edit-plugin"
    assert state(result, "quant_rtn") == ("ready", "")
    assert state(result, "noop") == ("ready", "")


def test_explicit_module_plugin_with_p() -> None:
    modules = Path(__file__).parent / "plugin_modules"
    result = run_cli("plugins", "-p", "hook_style_guard", "--json", site=modules)
    doc = result.json()
    counting = next(c for c in doc["components"] if c["name"] == "counting")
    assert counting["kind"] == "guard" and counting["status"] == "ready"
    assert (counting["plugin"], counting["origin"]) == ("hook_style_guard", "plugin")
    hooks = next(c for c in doc["components"] if c["kind"] == "hooks")
    assert hooks["name"] == "hook_style_guard"
    assert {"hook": "invarlock_register_guards", "flags": []} in hooks["hooks"]

    missing = run_cli("plugins", "-p", "no_such_module_xyz", "--json")
    plugin = next(p for p in missing.json()["plugins"] if p["name"] == "no_such_module_xyz")
    assert plugin["status"] == "error"
    assert "no entry point or module named 'no_such_module_xyz'" in plugin["detail"]
