"""The run configuration: YAML in, a validated :class:`RunConfig` out.

Keys shared with the published upstream keep its names (``model.id``, ``model.adapter``,
``model.device``, ``edit.name`` with parameters inline or under ``edit.plan``,
``guards.order``, ``output.dir``). Every error names the file, the line and the key path.
Relative paths (``model.id``, ``output.dir``) are relative to the current directory, as on
the command line.
``--set key.path=value`` overrides are applied before validation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from invarlock.core.errors import ConfigError
from invarlock.core.options import OptionError, coerce
from invarlock.data.settings import DatasetSection, parse_dataset
from invarlock.evaluation.settings import EvalSection, parse_eval
from invarlock.guards.tiers import DEFAULT_TIER, Tier
from invarlock.runner.yaml_loader import decode_config, load_yaml

#: The guards a config without ``guards.order`` runs, in this order.
DEFAULT_GUARD_ORDER = ("invariants", "spectral", "rmt", "variance")
SnapshotMode = Literal["auto", "memory", "disk"]
SNAPSHOT_MODES: tuple[str, ...] = get_args(SnapshotMode)

TOP_LEVEL_KEYS = ("model", "edit", "guards", "dataset", "eval", "output", "plugins")
MODEL_KEYS = ("id", "adapter", "device")  # the rest are adapter options
GUARDS_KEYS = ("order", "fail_fast", "allow_empty", "tier")
OUTPUT_KEYS = ("dir", "run_name", "snapshot", "export", "format", "html")
PLUGINS_KEYS = ("load", "block", "local_files")


@dataclass
class ModelSection:
    id: str
    adapter: str = "auto"
    device: str = "auto"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class EditSection:
    name: str = "quant_rtn"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class GuardsSection:
    order: list[str] = field(default_factory=lambda: list(DEFAULT_GUARD_ORDER))
    blocks: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_fast: bool = False
    order_given: bool = False
    allow_empty: bool = False
    tier: str = DEFAULT_TIER  # handed to every guard that takes a ``tier`` option


@dataclass
class OutputSection:
    dir: Path = Path("runs")
    run_name: str | None = None
    snapshot: str = "auto"
    export: bool = False
    #: Checkpoint formats written after a kept edit (``output.format``; ``export: true`` is
    #: ``[native]``).
    formats: list[str] = field(default_factory=list)
    html: bool = True  # write report.html when the plots extra is installed


@dataclass
class PluginsSection:
    load: list[str] = field(default_factory=list)
    block: list[str] = field(default_factory=list)
    local_files: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"load": self.load, "block": self.block, "local_files": self.local_files}


@dataclass
class RunConfig:
    """A validated configuration, with where each key came from (for error messages)."""

    model: ModelSection
    edit: EditSection
    guards: GuardsSection
    output: OutputSection
    plugins: PluginsSection
    dataset: DatasetSection | None = None  # None: no dataset (calib=None, no evaluation)
    eval: EvalSection | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    lines: dict[str, int] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)  # key path -> its --set argument

    def location(self, key_path: str | None) -> str:
        """Where ``key_path`` was written: ``file:line`` (the nearest known parent key's
        line), ``--set 'ARG'`` when the key (or a parent) was set on the command line."""
        source = str(self.path) if self.path is not None else "<config>"
        probe = key_path or ""
        while probe:
            if probe in self.overrides:
                return f"--set {self.overrides[probe]!r}"
            if probe in self.lines:
                return f"{source}:{self.lines[probe]}"
            probe = probe.rpartition(".")[0]
        return source

    def where(self, key_path: str) -> str:
        """``file:line: key.path`` (or ``--set 'ARG': key.path``) for messages."""
        return f"{self.location(key_path)}: {key_path}"

    def error(self, key_path: str, problem: str) -> ConfigError:
        return ConfigError(problem, key_path=key_path, where=self.location(key_path))

    def locate(self, error: ConfigError) -> ConfigError:
        """``error`` (its key path kept) placed where its key path was written."""
        return error.located(self.location(error.key_path))


# --------------------------------------------------------------------------- loading


def load_config(path: Path, overrides: Sequence[str] = ()) -> RunConfig:
    """Read, override and validate the YAML config at ``path``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    return parse_config(decode_config(data, str(path)), path=path, overrides=overrides)


def parse_config(
    text: str, *, path: Path | None = None, overrides: Sequence[str] = ()
) -> RunConfig:
    source = str(path) if path is not None else "<config>"
    data, node = load_yaml(text, source)
    lines: dict[str, int] = {}
    if node is not None:
        _record_lines(node, "", lines, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the config must be a mapping of sections, got {type(data).__name__}"
        )
    given: dict[str, str] = {}
    for override in overrides:
        _apply_override(data, override, lines, given)
    return _validate(data, path, lines, given)


def _record_lines(node: yaml.Node, prefix: str, lines: dict[str, int], source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    f"{source}:{key_node.start_mark.line + 1}: {prefix or 'config'}: "
                    "keys must be plain names, not lists or mappings"
                )
            key = str(key_node.value)
            path = f"{prefix}.{key}" if prefix else key
            if key in seen:
                raise ConfigError(f"{source}:{key_node.start_mark.line + 1}: {path}: duplicate key")
            seen.add(key)
            lines[path] = key_node.start_mark.line + 1
            _record_lines(value_node, path, lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = f"{prefix}[{index}]"
            lines[path] = item.start_mark.line + 1
            _record_lines(item, path, lines, source)


def _apply_override(
    data: dict[str, Any], override: str, lines: dict[str, int], given: dict[str, str]
) -> None:
    """``a.b.c=value``: value parsed as YAML (``8`` → int, ``[a, b]`` → list)."""
    key_path, sep, text = override.partition("=")
    key_path = key_path.strip()
    if not sep or not key_path or any(not part for part in key_path.split(".")):
        raise ConfigError(f"--set {override!r}: expected KEY.PATH=VALUE")
    try:
        value = load_yaml(text, "value")[0] if text.strip() else ""
    except ConfigError as exc:  # "value:1:3: problem" -> "value column 3: problem"
        where, _, problem = str(exc).partition(": ")
        column = where.rsplit(":", 1)[-1] if where.count(":") == 2 else ""
        at = f" at column {column}" if column else ""
        raise ConfigError(f"--set {override!r}: value{at}: {problem}") from None
    target = data
    parts = key_path.split(".")
    for i, part in enumerate(parts[:-1]):
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {override!r}: {'.'.join(parts[: i + 1])} is not a mapping")
        target = child
    target[parts[-1]] = value
    for known in [
        k for k in lines if k == key_path or k.startswith((key_path + ".", key_path + "["))
    ]:
        del lines[known]
    given[key_path] = override


# --------------------------------------------------------------------------- validation


class SectionChecker:
    """Reads the sections of a config: structure (mappings, unknown keys) here, values
    coerced and checked by :mod:`invarlock.core.options`; every error is located."""

    def __init__(self, path: Path | None, lines: dict[str, int], overrides: dict[str, str]) -> None:
        self.probe = RunConfig(
            model=ModelSection(id=""),
            edit=EditSection(),
            guards=GuardsSection(),
            output=OutputSection(),
            plugins=PluginsSection(),
            path=path,
            lines=lines,
            overrides=overrides,
        )

    def fail(self, key_path: str, problem: str) -> ConfigError:
        return self.probe.error(key_path, problem)

    def mapping(self, data: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping, got {type(value).__name__}")
        return value

    def keys(self, section: Mapping[str, Any], prefix: str, allowed: Sequence[str]) -> None:
        for key in section:
            if key not in allowed:
                raise self.fail(
                    f"{prefix}.{key}" if prefix else str(key),
                    f"unknown key; expected one of: {', '.join(allowed)}",
                )

    def value(
        self, section: Mapping[str, Any], prefix: str, key: str, kind: Any, default: Any
    ) -> Any:
        """``prefix.key`` (or ``default``) as the type ``kind``."""
        return coerce(section.get(key, default), kind, f"{prefix}.{key}")

    def string(self, section: Mapping[str, Any], prefix: str, key: str, default: str | None) -> str:
        value = section.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{prefix}.{key}", f"must be a non-empty string, got {value!r}")
        return value

    def names(self, section: Mapping[str, Any], prefix: str, key: str) -> list[str]:
        value = self.value(section, prefix, key, list[str] | None, [])
        if value is None:
            return []
        for index, name in enumerate(value):
            if not name:
                raise self.fail(f"{prefix}.{key}[{index}]", "must be a non-empty name")
        return list(value)


def _validate(
    data: dict[str, Any], path: Path | None, lines: dict[str, int], overrides: dict[str, str]
) -> RunConfig:
    check = SectionChecker(path, lines, overrides)
    try:
        return _sections(check, data, path, lines, overrides)
    except OptionError as exc:
        raise check.probe.locate(exc) from None


def _sections(
    check: SectionChecker,
    data: dict[str, Any],
    path: Path | None,
    lines: dict[str, int],
    overrides: dict[str, str],
) -> RunConfig:
    check.keys(data, "", TOP_LEVEL_KEYS)

    model_raw = check.mapping(data, "model")
    if "id" not in model_raw:
        raise check.fail(
            "model.id", "missing: set model.id to a model directory, .gguf file or hub id"
        )
    model = ModelSection(
        id=str(check.string(model_raw, "model", "id", None)),
        adapter=check.string(model_raw, "model", "adapter", "auto"),
        device=check.string(model_raw, "model", "device", "auto"),
        options={k: v for k, v in model_raw.items() if k not in MODEL_KEYS},
    )

    edit_raw = dict(check.mapping(data, "edit"))
    plan = edit_raw.pop("plan", None) or {}
    if not isinstance(plan, dict):
        raise check.fail("edit.plan", f"must be a mapping, got {type(plan).__name__}")
    name = check.string(edit_raw, "edit", "name", "quant_rtn")
    edit_raw.pop("name", None)
    for key in set(plan) & set(edit_raw):
        if plan[key] != edit_raw[key]:
            raise check.fail(
                f"edit.plan.{key}",
                f"conflicts with edit.{key} ({edit_raw[key]!r} vs {plan[key]!r})",
            )
    edit = EditSection(name=name, params={**edit_raw, **plan})

    guards_raw = check.mapping(data, "guards")
    order_given = "order" in guards_raw
    order = check.names(guards_raw, "guards", "order") if order_given else list(DEFAULT_GUARD_ORDER)
    duplicates = sorted({g for g in order if order.count(g) > 1})
    if duplicates:
        raise check.fail("guards.order", f"lists {', '.join(duplicates)} more than once")
    blocks: dict[str, dict[str, Any]] = {}
    for key, value in guards_raw.items():
        if key in GUARDS_KEYS:
            continue
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise check.fail(
                f"guards.{key}", f"a guard's block must be a mapping of options, got {value!r}"
            )
        blocks[str(key)] = value
    allow_empty = check.value(guards_raw, "guards", "allow_empty", bool, False)
    if not order and not allow_empty:
        raise check.fail(
            "guards.order",
            "is empty: nothing would check the edit; list guards, or set "
            "guards.allow_empty: true to keep edits unchecked",
        )
    tier = check.value(guards_raw, "guards", "tier", Tier, DEFAULT_TIER)
    guards = GuardsSection(
        order=order,
        blocks=blocks,
        fail_fast=check.value(guards_raw, "guards", "fail_fast", bool, False),
        order_given=order_given,
        allow_empty=allow_empty,
        tier=tier,
    )

    output_raw = check.mapping(data, "output")
    check.keys(output_raw, "output", OUTPUT_KEYS)
    snapshot = check.value(output_raw, "output", "snapshot", SnapshotMode, "auto")
    run_name = output_raw.get("run_name")
    if run_name is not None and (not isinstance(run_name, str) or "/" in run_name or not run_name):
        raise check.fail("output.run_name", f"must be a plain directory name, got {run_name!r}")
    output = OutputSection(
        dir=Path(check.string(output_raw, "output", "dir", "runs")),
        run_name=run_name,
        snapshot=snapshot,
        export=check.value(output_raw, "output", "export", bool, False),
        html=check.value(output_raw, "output", "html", bool, True),
    )
    output.formats = _export_formats(check, output_raw, output.export)
    output.export = bool(output.formats)

    plugins_raw = check.mapping(data, "plugins")
    check.keys(plugins_raw, "plugins", PLUGINS_KEYS)
    plugins = PluginsSection(
        load=check.names(plugins_raw, "plugins", "load"),
        block=check.names(plugins_raw, "plugins", "block"),
        local_files=check.value(plugins_raw, "plugins", "local_files", bool, True),
    )

    config = RunConfig(
        model=model,
        edit=edit,
        guards=guards,
        output=output,
        plugins=plugins,
        dataset=parse_dataset(check, data),
        eval=parse_eval(check, data),
        raw=data,
        path=path,
        lines=lines,
        overrides=overrides,
    )
    return config


def _export_formats(
    check: SectionChecker, output_raw: Mapping[str, Any], export: bool
) -> list[str]:
    """``output.format`` (a name or a list of names); without it ``export: true`` = native."""
    from invarlock.exporters import FORMATS

    if "format" not in output_raw or output_raw["format"] is None:
        return ["native"] if export else []
    value = output_raw["format"]
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise check.fail("output.format", f"must be a format name or a list of them, got {value!r}")
    for name in names:
        if name not in FORMATS:
            raise check.fail(
                "output.format", f"unknown format {name!r}; known: {', '.join(FORMATS)}"
            )
    if len(set(names)) != len(names):
        raise check.fail("output.format", f"lists a format twice: {names}")
    return list(names)
