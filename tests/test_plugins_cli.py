"""``invarlock plugins`` output contracts: JSON, verbose, explain, trace, start-up imports."""

from __future__ import annotations

import json
import sys

import pytest
from cli_helpers import run_cli, table_row

from invarlock.plugins.records import JSON_SCHEMA


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["plugins"],
        ["plugins", "list", "--json"],
        ["plugins", "guards", "--verbose"],
        ["plugins", "adapters", "--explain", "hf_causal"],
        ["plugins", "edits"],
        ["run", "--help"],
    ],
)
def test_startup_commands_import_neither_torch_nor_transformers(args: list[str]) -> None:
    result = run_cli(*args, check_imports=True)
    assert result.code == 0, result.err
    assert result.heavy_imports == []


def test_json_is_exactly_one_document_on_stdout() -> None:
    result = run_cli("plugins", "list", "--json", env={"INVARLOCK_DEBUG_TRACE": "1"})
    assert result.code == 0
    doc = json.loads(result.out)  # nothing else on stdout, even with the trace on
    assert doc["schema"] == JSON_SCHEMA
    assert set(doc) == {
        "schema",
        "invarlock_version",
        "components",
        "plugins",
        "local_plugin_root",
        "problems",
    }
    component = doc["components"][0]
    for key in (
        "name",
        "kind",
        "origin",
        "backend",
        "version",
        "status",
        "detail",
        "hooks",
        "parameters",
        "entry_point",
        "distribution",
        "module",
        "file",
    ):
        assert key in component


def test_category_filters() -> None:
    kinds = {c["kind"] for c in run_cli("plugins", "adapters", "--json").json()["components"]}
    assert kinds == {"adapter"}
    guards = run_cli("plugins", "guards")
    assert "Adapters" not in guards.out and "Guards" in guards.out
    edits = run_cli("plugins", "edits", "--json").json()["components"]
    assert {(c["name"], c["kind"], c["origin"]) for c in edits} == {
        ("quant_rtn", "edit", "builtin"),
        ("noop", "edit", "builtin"),
    }
    assert table_row(run_cli("plugins", "edits").out, "quant_rtn")[1:3] == ["Built-in", "Edit"]


def test_hook_filter() -> None:
    doc = run_cli("plugins", "--hook", "invarlock_load_model", "--json").json()
    assert {c["kind"] for c in doc["components"]} == {"adapter"}


def test_verbose_shows_plugin_class_distribution_file_and_hooks() -> None:
    result = run_cli("plugins", "guards", "--verbose")
    assert result.code == 0
    block = result.out[result.out.index("invariants (Guard, Built-in)") :]
    for expected in (
        "class         invarlock.guards.invariants:InvariantsGuard",
        "plugin        invarlock.guards.plugin",
        "distribution  invarlock 0.1.0",
        "invarlock/guards/invariants.py",
        "invarlock_guard_prepare",
        "invarlock_guard_validate",
        "invarlock_register_guards",
    ):
        assert expected in block, expected


def test_explain_shows_doc_options_yaml_and_source() -> None:
    result = run_cli("plugins", "guards", "--explain", "invariants")
    assert result.code == 0, result.err
    out = result.out
    assert out.startswith("invariants — Guard (Built-in): ✅ Ready")
    assert "check_finite" in out  # an option, with its default
    assert "guards:\n  order:\n  - invariants" in out
    assert "plugin        invarlock.guards.plugin" in out

    adapter = run_cli("plugins", "adapters", "--explain", "hf_causal")
    assert "model:\n  adapter: hf_causal" in adapter.out

    unknown = run_cli("plugins", "adapters", "--explain", "nope")
    assert unknown.code == 2
    assert "no adapter, guard or edit named 'nope'" in unknown.err
    assert "hf_causal" in unknown.err


def test_debug_trace_logs_discovery_and_every_hook_call() -> None:
    result = run_cli("plugins", "list", env={"INVARLOCK_DEBUG_TRACE": "1"})
    assert result.code == 0
    err = result.err
    assert "plugin invarlock.guards.plugin imported in" in err
    assert "local plugin files: searched" in err
    assert "call invarlock_register_guards(register=" in err
    assert "done invarlock_register_guards in" in err
    assert "plugin loading done in" in err
    assert "[invarlock" not in result.out


def test_console_script_and_python_dash_m_agree() -> None:
    import subprocess
    from pathlib import Path

    from cli_helpers import clean_env

    script = Path(sys.executable).parent / "invarlock"
    proc = subprocess.run(
        [str(script), "plugins", "--json"],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
    )
    module = run_cli("plugins", "--json")  # python -m invarlock
    assert json.loads(proc.stdout)["components"] == module.json()["components"]
