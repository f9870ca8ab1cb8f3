"""Validated configuration of the built-in edits (torch-free: listings import it).

The runner hands over the YAML ``edit:`` block's parameters either flat or nested under
``plan:`` (the upstream spelling); :func:`flatten_params` accepts both and error messages name
the key where the user wrote it (``edit.bits`` or ``edit.plan.bits``).

Keys of the published upstream's RTN edit mean what they meant there, so its configs carry
over: ``bitwidth`` (= ``bits``), ``clamp_ratio`` (the fraction of largest-magnitude weights
per channel to clip, i.e. ``clamp_percentile = 100 * (1 - clamp_ratio)``), ``scope``
(``all``/``ffn``/``attn``) and ``seed`` (recorded; RTN is deterministic).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, get_args

from invarlock.core.edit import EditConfigError
from invarlock.core.options import (
    Option,
    OptionError,
    at_least,
    check_block,
    declared_options,
    in_range,
)
from invarlock.core.selection import check_patterns

__all__ = [
    "EDIT_OPTIONS",
    "GGUF_BLOCK",
    "GGUF_GRIDS",
    "RTN_OPTIONS",
    "QuantSpec",
    "RTNConfig",
    "flatten_params",
    "option_lines",
    "parse_noop",
    "parse_rtn",
    "rtn_config",
]

#: ``grid`` values: name -> bits (group 32, symmetric, gguf's rounding and fp16 block scale).
GGUF_GRIDS: dict[str, int] = {"gguf_q8_0": 8, "gguf_q4_0": 4}
#: Block length of every gguf grid.
GGUF_BLOCK = 32


@dataclass(frozen=True)
class QuantSpec:
    """The numeric part of a quant_rtn config: what the kernels need."""

    bits: int = 8
    symmetric: bool = True
    group_size: int | None = None
    clamp_max_ratio: float | None = None
    clamp_percentile: float | None = None
    grid: str | None = None

    @property
    def qmin(self) -> int:
        """Smallest code: ``-qmax`` (symmetric), 0 (asymmetric), -8 on gguf's Q4_0 grid."""
        if self.grid == "gguf_q4_0":
            return -8
        return -self.qmax if self.symmetric else 0

    @property
    def qmax(self) -> int:
        """Largest integer code (symmetric codes are ``-qmax..qmax``, asymmetric ``0..qmax``)."""
        return 2 ** (self.bits - 1) - 1 if self.symmetric else 2**self.bits - 1

    @property
    def clips(self) -> bool:
        """Whether the range is shrunk below the data's own min/max."""
        ratio, pct = self.clamp_max_ratio, self.clamp_percentile
        return (ratio is not None and ratio < 1.0) or (pct is not None and pct < 100.0)

    @property
    def scheme(self) -> str:
        """Short label such as ``"sym/channel"`` or ``"asym/group128"``."""
        kind = "sym" if self.symmetric else "asym"
        layout = "channel" if self.group_size is None else f"group{self.group_size}"
        return f"{kind}/{layout}" if self.grid is None else f"{self.grid}/group{GGUF_BLOCK}"


@dataclass(frozen=True)
class RTNConfig:
    """A validated quant_rtn configuration."""

    spec: QuantSpec = QuantSpec()
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    stats: bool = True
    scope: str = "all"
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The resolved parameters, flat, as the report records them."""
        spec = self.spec
        return {
            "bits": spec.bits,
            "symmetric": spec.symmetric,
            "group_size": spec.group_size,
            "clamp_max_ratio": spec.clamp_max_ratio,
            "clamp_percentile": spec.clamp_percentile,
            "grid": spec.grid,
            "include": None if self.include is None else list(self.include),
            "exclude": list(self.exclude),
            "scope": self.scope,
            "seed": self.seed,
            "stats": self.stats,
        }


def flatten_params(params: Mapping[str, Any] | None) -> dict[str, tuple[str, Any]]:
    """Merge ``plan:`` into the flat parameters: ``{key: (key path, value)}``."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise EditConfigError(
            f"parameters must be a mapping, got {type(params).__name__}", key_path="edit"
        )
    flat = {str(key): (f"edit.{key}", value) for key, value in params.items() if key != "plan"}
    if "plan" in params:
        plan = params["plan"]
        if plan is None:
            plan = {}
        if not isinstance(plan, Mapping):
            raise EditConfigError(
                f"must be a mapping, got {type(plan).__name__}", key_path="edit.plan"
            )
        for key, value in plan.items():
            if key in flat:
                raise EditConfigError(
                    f"also given as edit.{key}; keep one", key_path=f"edit.plan.{key}"
                )
            flat[str(key)] = (f"edit.plan.{key}", value)
    return flat


def _checked(
    params: Mapping[str, Any] | None, options: list[Option], edit: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The parameters checked against the edit's declaration: ``(values, key paths)``."""
    values, where = {}, {}
    for key, (path, value) in flatten_params(params).items():
        prefix = path.rpartition(".")[0]
        unknown = f"unknown key for {edit}; accepted keys: {{names}}"
        try:
            values.update(check_block({key: value}, options, prefix, unknown=unknown))
        except OptionError as exc:
            raise EditConfigError(exc.problem, key_path=exc.key_path) from None
        where[key] = path
    return values, where


def parse_noop(params: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """``noop`` takes no parameters (an empty ``plan: {}`` is fine): an empty frozen mapping."""
    _checked(params, [], "noop")
    return MappingProxyType({})


def parse_rtn(params: Mapping[str, Any] | None) -> RTNConfig:
    """Validate quant_rtn parameters (flat or under ``plan:``) into an :class:`RTNConfig`."""
    values, where = _checked(params, RTN_OPTIONS, "quant_rtn")
    try:
        return rtn_config(where, **values)
    except OptionError as exc:
        raise EditConfigError(exc.problem, key_path=exc.key_path) from None


#: Values of the upstream ``scope`` key: which block layers are quantized.
Scope = Literal["all", "ffn", "attn"]
SCOPES: tuple[str, ...] = get_args(Scope)
Grid = Literal["gguf_q8_0", "gguf_q4_0"]


def rtn_config(
    where: Mapping[str, str],
    /,
    bits: int = 8,
    symmetric: bool = True,
    group_size: int | None = None,
    bitwidth: int | None = None,
    clamp_max_ratio: float | None = None,
    clamp_ratio: float | None = None,
    clamp_percentile: float | None = None,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    scope: Scope = "all",
    seed: int | None = None,
    stats: bool = True,
    grid: Grid | None = None,
) -> RTNConfig:
    """The quant_rtn configuration; this signature declares its options (``where`` maps an
    option to its key path as written, for messages).

    Args:
        bits: Bits per weight, 2..8.
        symmetric: Grid symmetric around zero; false adds a zero point per scale.
        group_size: Input elements per scale; null: one scale per output channel.
        bitwidth: The upstream name of bits (give one of the two).
        clamp_max_ratio: Clip to ratio × max|w| per channel or group, in (0, 1].
        clamp_ratio: Upstream outlier clipping: the fraction of largest |w| per channel or
            group to clip, in [0, 0.5] (0: off); same as clamp_percentile = 100 × (1 − ratio).
        clamp_percentile: Clip to this percentile of |w| per channel or group, in (0, 100]
            (sorts each channel: slow).
        include: Weight patterns to quantize (docs/guards.md, "Which weights"); null: every
            Linear/Conv1D inside the transformer blocks.
        exclude: Weight patterns to leave alone.
        scope: all, ffn or attn: which block layers (by module name) are quantized.
        seed: Accepted for upstream configs and recorded; RTN is deterministic.
        stats: Measure rel_error and max_error per layer (exact; costs about as much as the
            quantization itself; false skips it).
        grid: gguf_q8_0 or gguf_q4_0: llama.cpp's own block grid (group 32, symmetric,
            gguf's rounding and fp16 scales), so a GGUF export holds exactly the validated
            codes; fixes bits, symmetric and group_size, no clipping.
    """
    given = {k: v for k, v in locals().items() if k != "where" and k in where and v is not None}

    def key(name: str) -> str:
        return where.get(name, f"edit.{name}")

    _one_of(given, where, ("bits", "bitwidth"), "the same setting")
    _one_of(
        given, where, ("clamp_max_ratio", "clamp_percentile", "clamp_ratio"), "one clipping rule"
    )
    if bitwidth is not None:
        bits = bitwidth
    in_range(key("bitwidth" if bitwidth is not None else "bits"), bits, 2, 8)
    if group_size is not None:
        at_least(key("group_size"), group_size, 1)
    if clamp_max_ratio is not None:
        in_range(key("clamp_max_ratio"), clamp_max_ratio, 0.0, 1.0, open_low=True)
    if clamp_percentile is not None:
        in_range(key("clamp_percentile"), clamp_percentile, 0.0, 100.0, open_low=True)
    if clamp_ratio is not None and in_range(key("clamp_ratio"), clamp_ratio, 0.0, 0.5):
        clamp_percentile = 100.0 * (1.0 - clamp_ratio)
    spec = QuantSpec(bits, symmetric, group_size, clamp_max_ratio, clamp_percentile)
    if grid is not None:
        spec = _on_grid(grid, given, key)
    patterns = None
    if include is not None:
        patterns = check_patterns(key("include"), include)
        if not patterns:
            raise OptionError(
                "lists no pattern; omit the key for the default scope", key_path=key("include")
            )
    if seed is not None:
        at_least(key("seed"), seed, 0)
    excluded = check_patterns(key("exclude"), exclude)
    return RTNConfig(spec, patterns, excluded, stats, scope, seed)


#: The options of quant_rtn, as :func:`rtn_config` declares them.
RTN_OPTIONS: list[Option] = declared_options(rtn_config, skip=("where",))
#: Each built-in edit's declared options (``noop`` takes none).
EDIT_OPTIONS: dict[str, list[Option]] = {"quant_rtn": RTN_OPTIONS, "noop": []}


def option_lines(options: list[Option]) -> dict[str, str]:
    """``name → "type = default: help"``, as listings show an edit's parameters."""
    return {o.name: f"{o.annotation} = {o.default_text()}: {o.help}" for o in options}


def _on_grid(grid: str, given: Mapping[str, Any], key: Callable[[str], str]) -> QuantSpec:
    """The spec of a gguf grid; keys that would contradict it are refused, not overridden."""
    bits = GGUF_GRIDS[grid]
    fixed = {"bits": bits, "bitwidth": bits, "symmetric": True, "group_size": GGUF_BLOCK}
    for name, wanted in fixed.items():
        if name in given and given[name] != wanted:
            raise OptionError(
                f"{grid} fixes {name} = {wanted}; drop the key or the grid", key_path=key(name)
            )
    for name in ("clamp_max_ratio", "clamp_percentile", "clamp_ratio"):
        if given.get(name):
            raise OptionError(f"{grid} takes no clipping; drop the key", key_path=key(name))
    return QuantSpec(bits=bits, symmetric=True, group_size=GGUF_BLOCK, grid=grid)


def _one_of(
    given: Mapping[str, Any], where: Mapping[str, str], keys: tuple[str, ...], what: str
) -> None:
    named = [where[k] for k in keys if k in given]
    if len(named) > 1:
        raise OptionError(f"cannot be combined with {named[0]}; give {what}", key_path=named[1])
