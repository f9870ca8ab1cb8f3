"""The one option schema (invarlock.core.options): declarations, coercion, key paths, and
what a run does with a third-party guard's declared options."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from invarlock.core.api import Guard
from invarlock.core.errors import ConfigError
from invarlock.core.options import (
    OptionError,
    check_block,
    coerce,
    constructor_options,
    declared_options,
)


class ThresholdGuard(Guard):
    """Monitors maximum weight magnitude after edits (the plugin-workflow example)."""

    name = "threshold"

    def __init__(
        self,
        max_magnitude: float = 100.0,
        warn_magnitude: float = 50.0,
        scope: Literal["all", "ffn", "attn"] = "all",
        layers: list[str] | None = None,
        strict: bool = True,
    ):
        """
        Args:
            max_magnitude: Abort threshold for weight magnitude.
            warn_magnitude: Warning threshold for weight magnitude.
            scope: Which layers to check ("all", "ffn", "attn").
            layers: Module patterns [optional].
            strict: If True, abort on NaN.
        """
        self.options = dict(locals())
        del self.options["self"]

    def prepare(self, model: Any, adapter: Any, calib: Any, policy: Any) -> dict[str, Any]:
        return {"ready": True}

    def validate(self, model: Any, adapter: Any, context: Any) -> dict[str, Any]:
        return {"passed": True, "action": "continue", "message": "ok"}


def test_declaration_reads_signature_and_args_section() -> None:
    options = {o.name: o for o in constructor_options(ThresholdGuard)}
    assert list(options) == ["max_magnitude", "warn_magnitude", "scope", "layers", "strict"]
    assert options["max_magnitude"].annotation == "float"
    assert options["max_magnitude"].default == 100.0
    assert options["max_magnitude"].help == "Abort threshold for weight magnitude."
    assert options["scope"].annotation == "'all' | 'ffn' | 'attn'"
    assert options["layers"].annotation == "list[str] | None"
    assert options["layers"].help == "Module patterns [optional]."


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("1e-6", float, 1e-6),  # YAML 1.1 reads 1e-6 as a string
        ("-2.5E3", float | None, -2500.0),
        (3, float, 3.0),
        (None, float | None, None),
        (True, bool, True),
        (7, int, 7),
        ("attn", Literal["all", "attn"], "attn"),
        ("*.mlp.*", list[str], ["*.mlp.*"]),  # a lone value is a list of one
        (["a", "b"], tuple[str, ...], ("a", "b")),
        ({"mlp": ["1e-3", 0.01]}, dict[str, tuple[float, float]], {"mlp": (0.001, 0.01)}),
        ("x", Any, "x"),
    ],
)
def test_coerce(value: Any, kind: Any, expected: Any) -> None:
    assert coerce(value, kind, "k") == expected


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        ("abc", float, "guards.t.x: must be a number, got 'abc'"),
        (True, float, "guards.t.x: must be a number, got True"),
        (2.5, int, "guards.t.x: must be an integer, got 2.5"),
        ("yes", bool, "guards.t.x: must be true or false, got 'yes'"),
        ("fast", Literal["all", "attn"], "guards.t.x: must be one of all, attn, got 'fast'"),
        ([1], list[str], "guards.t.x[0]: must be a string, got 1"),
        ({"a": 1}, list[str], "guards.t.x: must be a list (list[str]), got {'a': 1}"),
        ([1, 2, 3], tuple[float, float], "guards.t.x: must have 2 items"),
    ],
)
def test_coerce_errors_carry_the_key_path(value: Any, kind: Any, message: str) -> None:
    with pytest.raises(OptionError) as caught:
        coerce(value, kind, "guards.t.x")
    assert str(caught.value).startswith(message)
    assert caught.value.key_path.startswith("guards.t.x")
    assert isinstance(caught.value, ConfigError)


def test_check_block_lists_accepted_keys_and_required_ones() -> None:
    def load(path: str, mode: int = 1) -> None:
        """Args:
        path: Where.
        mode: How.
        """

    declared = declared_options(load)
    assert check_block({"path": "p", "mode": 2}, declared, "model") == {"path": "p", "mode": 2}
    with pytest.raises(OptionError) as caught:
        check_block({"path": "p", "moed": 2}, declared, "model")
    assert caught.value.key_path == "model.moed"
    assert caught.value.problem == ("unknown key; accepted: path (str = required), mode (int = 1)")
    with pytest.raises(OptionError, match="model: missing required option"):
        check_block({}, declared, "model")


# --------------------------------------------------------------------------- through a run


PLUGIN = """
from invarlock import hookimpl
from invarlock.core.api import Guard


class ThresholdGuard(Guard):
    \"\"\"Monitors maximum weight magnitude after edits.\"\"\"

    name = "threshold"

    def __init__(self, max_magnitude: float = 100.0, layers: list[str] | None = None):
        \"\"\"
        Args:
            max_magnitude: Abort threshold for weight magnitude.
            layers: Module patterns.
        \"\"\"
        if not isinstance(max_magnitude, float):
            raise TypeError(f"max_magnitude reached the guard as {max_magnitude!r}")

    def prepare(self, model, adapter, calib, policy):
        return {"ready": True}

    def validate(self, model, adapter, context):
        return {"passed": True, "action": "continue", "message": "ok"}


@hookimpl
def invarlock_register_guards(register):
    register(ThresholdGuard)
"""


def _project(invarlock_project: Any, block: str) -> Any:
    config = f"edit: {{name: noop}}\nguards:\n  order: [threshold]\n  threshold: {block}\n"
    return invarlock_project(config, plugins=PLUGIN)


def test_a_third_party_guard_gets_coerced_options(invarlock_project) -> None:
    project = _project(invarlock_project, "{max_magnitude: 1e-6, layers: '*.mlp'}")
    outcome = project.run("--dry-run", "--json")
    outcome.assert_exit(0)
    (guard,) = outcome.json()["guards"]
    assert guard["options"] == {"max_magnitude": 1e-6, "layers": ["*.mlp"]}


def test_a_bad_option_fails_the_dry_run_with_file_line_and_key(invarlock_project) -> None:
    project = _project(invarlock_project, "{max_magnitude: abc}")
    project.run("--dry-run").assert_exit(2).assert_err(
        "config.yaml:4: guards.threshold.max_magnitude: must be a number, got 'abc'"
    )
    project = _project(invarlock_project, "{max_magnitud: 1}")
    project.run("--dry-run").assert_exit(2).assert_err(
        "guards.threshold.max_magnitud: unknown option for guard 'threshold'; it accepts: "
        "max_magnitude (float = 100.0)"
    )


def test_model_options_are_checked_against_load_model(invarlock_project, tiny_gpt2_dir) -> None:
    config = f"model: {{id: {tiny_gpt2_dir}, device: cpu, trust_remote_code: 'yes'}}\n"
    project = invarlock_project(config + "edit: {name: noop}\n")
    project.run("--dry-run").assert_exit(2).assert_err(
        "config.yaml:1: model.trust_remote_code: must be true or false, got 'yes'"
    )


def test_a_rule_broken_by_a_builtin_guard_option_fails_the_dry_run(invarlock_project) -> None:
    config = "edit: {name: noop}\nguards:\n  order: [spectral]\n  spectral:\n    iterations: 0\n"
    project = invarlock_project(config)
    project.run("--dry-run").assert_exit(2).assert_err(
        "config.yaml:5: guards.spectral.iterations: must be an integer >= 1, got 0"
    )
    project = invarlock_project(config.replace("iterations: 0", "max_rel_change: 1e-1"))
    outcome = project.run("--dry-run", "--json")
    outcome.assert_exit(0)
    assert outcome.json()["guards"][0]["options"]["max_rel_change"] == 0.1
