"""Broken plugins are reported truthfully: the listing, ``--explain`` and the exit code of a
run that needs the broken part all name the plugin. In-process through the shipped
``invarlock_project`` fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from invarlock.testing.distributions import write_distribution

GUARD = '''
from invarlock import hookimpl
from invarlock.core.api import Guard


class Looker(Guard):
    """Looks, and passes."""

    name = "looker"

    def validate(self, model, adapter, context):
        return {"passed": True, "action": "continue", "message": "ok"}
'''

RUN_CONFIG = "guards: {order: [invariants, looker]}\n"


def state(project, category: str, name: str, *args: str) -> tuple[str, str]:
    """``(status, detail)`` of component ``name`` in ``invarlock plugins CATEGORY --json``."""
    document = project.plugins(category, "--json", *args).assert_ok().json()
    (component,) = [c for c in document["components"] if c["name"] == name]
    return component["status"], component["detail"]


def test_register_hook_that_raises_leaves_an_error_row_naming_the_plugin(
    invarlock_project,
) -> None:
    plugin = GUARD + (
        "\n@hookimpl\ndef invarlock_register_guards(register):\n"
        "    register(Looker)\n    raise RuntimeError('half registered')\n"
    )
    project = invarlock_project(RUN_CONFIG, plugin)
    status, detail = state(project, "guards", "looker")
    assert status == "error" and detail.startswith("plugin 'local:invarlock_plugins.py' failed")
    assert "half registered" in detail
    run = project.run("--dry-run").assert_exit(3)
    run.assert_err("guard 'looker' cannot be used", "half registered")


def test_a_needed_guard_from_a_plugin_that_failed_to_import_exits_3(invarlock_project) -> None:
    plugin = "import no_such_module_for_invarlock_tests\n" + GUARD
    project = invarlock_project(RUN_CONFIG, plugin)
    run = project.run("--dry-run").assert_exit(3)
    run.assert_err(
        "guard 'looker' is not registered, and plugin(s) that may provide it failed to load",
        "local:invarlock_plugins.py",
        "needs no_such_module_for_invarlock_tests",
    )
    explain = project.plugins("guards", "--explain", "looker").assert_exit(3)
    explain.assert_err("plugins that failed to load", "local:invarlock_plugins.py")


def test_unknown_guard_with_nothing_broken_stays_a_config_error(invarlock_project) -> None:
    project = invarlock_project("guards: {order: [invariants, nobody]}\n")
    project.run("--dry-run").assert_exit(2).assert_err("unknown guard 'nobody'")


def test_hook_functions_cannot_add_a_guard_name_and_the_error_says_so(invarlock_project) -> None:
    plugin = """
    def invarlock_guard_validate(guard_name, model, adapter, context):
        if guard_name == "by_hook":
            return {"passed": True, "action": "continue", "message": "ok"}
    """
    project = invarlock_project("guards: {order: [by_hook]}\n", plugin)
    project.run("--dry-run").assert_exit(2).assert_err(
        "unknown guard 'by_hook'", "hook functions alone cannot add one"
    )


def test_hookimpl_without_the_prefix_is_flagged(invarlock_project) -> None:
    plugin = """
    from invarlock import hookimpl

    @hookimpl
    def edit_applied(run, result):
        print("never called")
    """
    project = invarlock_project(plugins=plugin)
    status, detail = state(project, "hooks", "local:invarlock_plugins.py")
    assert status == "error" and "lacks the 'invarlock_' prefix" in detail
    assert "did you mean 'invarlock_edit_applied'?" in detail
    project.plugins("--strict-plugins").assert_exit(3).assert_err("edit_applied")


def test_hook_option_rejects_unknown_names_and_specs_lists_signatures(invarlock_project) -> None:
    project = invarlock_project()
    project.plugins("--hook", "invarlock_guard_validat").assert_exit(2).assert_err(
        "unknown hook 'invarlock_guard_validat'; did you mean 'invarlock_guard_validate'?"
    )
    specs = project.plugins("--specs").assert_ok()
    specs.assert_out(
        "invarlock_guard_result(run: RunContext, outcome: GuardOutcome) -> None",
        "invarlock_guard_prepare(guard_name: str, model: Any, adapter: ModelAdapter, calib: Any, "
        "policy: Mapping[str, Any]) -> Mapping[str, Any] | None",
    )


def test_requires_as_a_string_is_an_error(invarlock_project) -> None:
    plugin = GUARD.replace('name = "looker"', 'name = "looker"\n    requires = "numpy"') + (
        "\n@hookimpl\ndef invarlock_register_guards(register):\n    register(Looker)\n"
    )
    status, detail = state(invarlock_project(plugins=plugin), "guards", "looker")
    assert status == "error"
    assert "Looker.requires must be a tuple of import names, not the string 'numpy'" in detail


def test_constructor_error_points_at_the_plugin_file(invarlock_project) -> None:
    plugin = (
        GUARD.replace(
            '    name = "looker"\n',
            '    name = "looker"\n\n    def __init__(self, limit):\n        self.limit = limit\n',
        )
        + "\n@hookimpl\ndef invarlock_register_guards(register):\n    register(Looker)\n"
    )
    project = invarlock_project(plugins=plugin)
    status, detail = state(project, "guards", "looker")
    assert status == "error" and "cannot be constructed from its defaults" in detail
    assert f"Looker is defined at {project.path / 'invarlock_plugins.py'}:" in detail


def test_distribution_version_and_file_fill_the_listing(
    invarlock_project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    write_distribution(
        site,
        "looker-plugin",
        version="2.3.4",
        entry_points={"invarlock.guards": {"looker": "looker_plugin:Looker"}},
        files={"looker_plugin/__init__.py": GUARD},
    )
    monkeypatch.syspath_prepend(str(site))
    project = invarlock_project()
    table = project.plugins("guards", "-p", "looker").assert_ok()
    assert table.row("looker")[4] == "2.3.4"  # the rendered Version column
    document = project.plugins("--json", "-p", "looker").assert_ok().json()
    (looker,) = [c for c in document["components"] if c["name"] == "looker"]
    assert looker["version"] == "2.3.4"
    assert looker["file"] == str(site / "looker_plugin" / "__init__.py")


def test_a_name_clash_is_warned_once(invarlock_project) -> None:
    plugin = GUARD.replace('name = "looker"', 'name = "variance"') + (
        "\n@hookimpl\ndef invarlock_register_guards(register):\n    register(Looker)\n"
    )
    project = invarlock_project("guards: {order: [invariants]}\n", plugin)
    run = project.run("--dry-run").assert_ok()
    assert run.err.count("name clash") == 1, run


def test_local_plugin_named_in_plugins_load(invarlock_project) -> None:
    plugin = GUARD + "\n@hookimpl\ndef invarlock_register_guards(register):\n    register(Looker)\n"
    config = "plugins: {load: ['local:invarlock_plugins.py']}\n" + RUN_CONFIG
    invarlock_project(config, plugin).run("--dry-run").assert_ok()
    missing = invarlock_project("plugins: {load: ['local:elsewhere/invarlock_plugins.py']}\n")
    missing.run("--dry-run").assert_exit(3).assert_err(
        "no local plugin file 'local:elsewhere/invarlock_plugins.py'"
    )


def test_explain_keeps_types_the_order_and_prints_the_docstring_once(invarlock_project) -> None:
    project = invarlock_project(files={"config.yaml": "guards: {order: [variance, spectral]}\n"})
    out = project.plugins("guards", "--explain", "spectral", "-c", "config.yaml").assert_ok().out
    assert "list[str] | None" in out
    assert out.count("Warn when any weight's |σ'−σ|/σ exceeds this (≤ max_rel_change).") == 1
    assert "order:\n  - variance\n  - spectral\n" in out
    default = project.plugins("guards", "--explain", "invariants").assert_ok().out
    assert "order:\n  - invariants\n  - spectral\n  - rmt\n  - variance\n" in default


NOISY = """
from invarlock import hookimpl

print("imported noisy plugin")


@hookimpl(wrapper=True)
def invarlock_guard_validate(guard_name):
    result = yield
    print(guard_name, "->", result and result.get("action"))
    return result
"""


def test_plugin_output_never_corrupts_json(invarlock_project) -> None:
    project = invarlock_project("guards: {order: [invariants]}\nedit: {name: noop}\n", NOISY)
    run = project.run("--json").assert_kept()
    assert run.json()["status"] == "kept"
    run.assert_err("imported noisy plugin", "invariants -> continue")
    listing = project.plugins("--json").assert_ok()
    assert listing.json()["schema"] == "invarlock.plugins/v1"
    listing.assert_err("imported noisy plugin")
    plain = project.run()  # without --json, plugin output stays where the plugin put it
    plain.assert_out("invariants -> continue")
