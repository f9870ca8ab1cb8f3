"""Fuzz the config loader and the guard-result checks: only documented errors come out.

A config may fail only with :class:`ConfigError` (exit 2, one message); a guard result may
fail only with :class:`MalformedGuardResult`; whatever is accepted can be written to
``report.json`` (strict JSON) at a size bounded by what was written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invarlock.core.errors import ConfigError
from invarlock.core.jsonsafe import json_safe
from invarlock.core.results import (
    MalformedGuardResult,
    check_prepare_result,
    check_validate_result,
)
from invarlock.runner.config import TOP_LEVEL_KEYS, load_config, parse_config

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["auto", "memory", "disk", "quant_rtn", "noop", "invariants", "[]", "~"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4),
    ),
    max_leaves=20,
)
section_keys = st.sampled_from(
    [*TOP_LEVEL_KEYS, "id", "name", "bits", "order", "fail_fast", "allow_empty", "snapshot"]
)
configs = st.dictionaries(
    st.sampled_from(TOP_LEVEL_KEYS),
    st.one_of(values, st.dictionaries(section_keys, values, max_size=5)),
    max_size=6,
)


def _accepts(text: str, overrides: tuple[str, ...] = ()) -> None:
    try:
        config = parse_config(text, path=Path("fuzz.yaml"), overrides=overrides)
    except ConfigError as exc:
        assert str(exc).startswith(("fuzz.yaml", "--set ")), str(exc)  # it says where
        return
    written = json.dumps(json_safe(config.raw), allow_nan=False)
    assert len(written) <= 8 * (len(text) + sum(map(len, overrides))) + 100_000


@FUZZ
@given(st.text(max_size=300))
def test_any_text_is_a_config_or_a_config_error(text: str) -> None:
    _accepts(text)


@FUZZ
@given(configs)
def test_structured_configs(data: dict) -> None:
    _accepts(yaml.safe_dump(data, allow_unicode=True))


@FUZZ
@given(configs, st.integers(0, 2000), st.text(alphabet="&*[]{}:,-!? \n'\"#|>%@`", max_size=6))
def test_yaml_with_punctuation_spliced_in(data: dict, where: int, junk: str) -> None:
    text = yaml.safe_dump(data)
    where %= len(text) + 1
    _accepts(text[:where] + junk + text[where:])


@FUZZ
@given(st.lists(st.text(max_size=40), max_size=3))
def test_any_set_argument(overrides: list[str]) -> None:
    _accepts("model: {id: x}\n", tuple(overrides))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_in_a_config_file(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "config.yaml"
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path))


results = st.one_of(
    values,
    st.fixed_dictionaries(
        {},
        optional={
            "passed": st.one_of(st.booleans(), scalars),
            "action": st.one_of(st.sampled_from(["continue", "warn", "abort"]), scalars),
            "message": st.one_of(st.text(max_size=20), scalars),
            "metrics": values,
            "warnings": values,
            "ready": st.one_of(st.booleans(), scalars),
        },
    ),
)


@FUZZ
@given(results)
def test_guard_results_are_outcomes_or_malformed(result: object) -> None:
    for check in (check_validate_result, check_prepare_result):
        try:
            outcome = check("fuzz", result)
        except MalformedGuardResult as exc:
            assert "guard 'fuzz'" in str(exc)
            continue
        json.dumps(outcome.to_dict(), allow_nan=False)


edit_params = st.dictionaries(
    st.sampled_from(
        ["bits", "bitwidth", "group_size", "scope", "clamp_ratio", "symmetric", "stats", "seed"]
    ),
    values,
    max_size=3,
)
guard_blocks = st.dictionaries(
    st.sampled_from(["invariants", "spectral", "variance", "nope"]),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=10), values, max_size=2)),
    max_size=2,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edit_params,
    guard_blocks,
    st.one_of(st.none(), st.lists(st.sampled_from(["invariants", "spectral", "x"]), max_size=3)),
    st.dictionaries(st.sampled_from(["snapshot", "run_name", "export", "dir"]), values, max_size=2),
)
def test_preflight_of_any_plan_raises_only_invarlock_errors(
    tmp_path_factory: pytest.TempPathFactory,
    params: dict,
    blocks: dict,
    order: list | None,
    output: dict,
) -> None:
    """What a config holds reaches the plan, the edit's parser and the guards' constructors:
    each may refuse it, but only with an error that has an exit code."""
    from invarlock.core.errors import InvarlockError
    from invarlock.plugins import PluginManager, Selection
    from invarlock.runner.runner import Runner

    model = tmp_path_factory.mktemp("model")
    (model / "config.json").write_text("{}")
    guards: dict = {**blocks} if order is None else {**blocks, "order": order}
    data = {
        "model": {"id": str(model)},
        "edit": {"name": "quant_rtn", **params},
        "guards": guards,
        "output": output,
    }
    try:
        config = parse_config(yaml.safe_dump(data), path=Path("fuzz.yaml"))
        manager = _MANAGER.setdefault(
            "m", PluginManager(Selection.build(env={}, local_files=False)).load()
        )
        Runner(config, manager).preflight()
    except InvarlockError as exc:
        assert str(exc)


_MANAGER: dict = {}
