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

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from invarlock.core.edit import EditConfigError

__all__ = [
    "GGUF_BLOCK",
    "GGUF_GRIDS",
    "RTN_PARAMETERS",
    "QuantSpec",
    "RTNConfig",
    "flatten_params",
    "parse_noop",
    "parse_rtn",
]

#: quant_rtn parameters, as ``invarlock plugins edits`` and ``explain`` show them.
RTN_PARAMETERS: dict[str, str] = {
    "bits": "int = 8: bits per weight, 2..8",
    "symmetric": "bool = true: grid symmetric around zero; false adds a zero point per scale",
    "group_size": "int | null = null: input elements per scale; null: one scale per output channel",
    "bitwidth": "int: the upstream name of bits (give one of the two)",
    "clamp_max_ratio": (
        "float | null = null: clip to ratio × max|w| per channel or group, in (0, 1]"
    ),
    "clamp_ratio": (
        "float | null = null: upstream outlier clipping: the fraction of largest |w| per channel"
        " or group to clip, in [0, 0.5] (0: off); same as clamp_percentile = 100 × (1 − ratio)"
    ),
    "clamp_percentile": (
        "float | null = null: clip to this percentile of |w| per channel or group, in (0, 100]"
        " (sorts each channel: slow)"
    ),
    "include": (
        "list[str] | null = null: fnmatch patterns of module names to quantize;"
        " null: every Linear/Conv1D inside the transformer blocks"
    ),
    "exclude": "list[str] = []: fnmatch patterns of module names to leave alone",
    "scope": "str = all: all, ffn or attn: which block layers (by module name) are quantized",
    "seed": "int | null = null: accepted for upstream configs and recorded; RTN is deterministic",
    "stats": (
        "bool = true: measure rel_error and max_error per layer"
        " (exact; costs about as much as the quantization itself; false skips it)"
    ),
    "grid": (
        "str | null = null: gguf_q8_0 or gguf_q4_0: llama.cpp's own block grid (group 32,"
        " symmetric, gguf's rounding and fp16 scales), so a GGUF export holds exactly the"
        " validated codes; fixes bits, symmetric and group_size, no clipping"
    ),
}

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
        raise EditConfigError(f"edit: parameters must be a mapping, got {type(params).__name__}")
    flat = {str(key): (f"edit.{key}", value) for key, value in params.items() if key != "plan"}
    if "plan" in params:
        plan = params["plan"]
        if plan is None:
            plan = {}
        if not isinstance(plan, Mapping):
            raise EditConfigError(f"edit.plan: must be a mapping, got {type(plan).__name__}")
        for key, value in plan.items():
            if key in flat:
                raise EditConfigError(f"edit.plan.{key}: also given as edit.{key}; keep one")
            flat[str(key)] = (f"edit.plan.{key}", value)
    return flat


def _reject_unknown(
    flat: Mapping[str, tuple[str, Any]], accepted: tuple[str, ...], edit: str
) -> None:
    for key, (path, _) in flat.items():
        if key not in accepted:
            listing = ", ".join(sorted(accepted)) if accepted else "none"
            raise EditConfigError(f"{path}: unknown key for {edit}; accepted keys: {listing}")


def parse_noop(params: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """``noop`` takes no parameters (an empty ``plan: {}`` is fine): an empty frozen mapping."""
    _reject_unknown(flatten_params(params), (), "noop")
    return MappingProxyType({})


def parse_rtn(params: Mapping[str, Any] | None) -> RTNConfig:
    """Validate quant_rtn parameters (flat or under ``plan:``) into an :class:`RTNConfig`."""
    flat = flatten_params(params)
    _reject_unknown(flat, tuple(RTN_PARAMETERS), "quant_rtn")
    get = flat.get
    _one_of(flat, ("bits", "bitwidth"), "the same setting")
    bits = _integer(get("bits") or get("bitwidth"), 8, low=2, high=8)
    assert bits is not None  # it has a default
    group_size = _integer(get("group_size"), None, low=1, high=None)
    _one_of(flat, ("clamp_max_ratio", "clamp_percentile", "clamp_ratio"), "one clipping rule")
    clamp_max_ratio = _number(get("clamp_max_ratio"), low=0.0, high=1.0)
    clamp_percentile = _number(get("clamp_percentile"), low=0.0, high=100.0)
    outlier_fraction = _fraction(get("clamp_ratio"), high=0.5)
    if outlier_fraction:
        clamp_percentile = 100.0 * (1.0 - outlier_fraction)
    scope = get("scope", ("", "all"))[1]
    if scope not in SCOPES:
        raise EditConfigError(
            f"{flat['scope'][0]}: must be one of {', '.join(SCOPES)}, got {scope!r}"
        )
    spec = QuantSpec(
        bits=bits,
        symmetric=_boolean(get("symmetric"), True),
        group_size=group_size,
        clamp_max_ratio=clamp_max_ratio,
        clamp_percentile=clamp_percentile,
    )
    if get("grid") is not None and get("grid")[1] is not None:
        spec = _on_grid(flat)
    include = _patterns(get("include"), require_some=True)
    exclude = _patterns(get("exclude"), require_some=False) or ()
    seed = _integer(get("seed"), None, low=0, high=None)
    return RTNConfig(spec, include, exclude, _boolean(get("stats"), True), scope, seed)


def _on_grid(flat: Mapping[str, tuple[str, Any]]) -> QuantSpec:
    """The spec of a gguf grid; keys that would contradict it are refused, not overridden."""
    path, grid = flat["grid"]
    if grid not in GGUF_GRIDS:
        raise EditConfigError(f"{path}: must be one of {', '.join(GGUF_GRIDS)}, got {grid!r}")
    bits = GGUF_GRIDS[grid]
    fixed = {"bits": bits, "bitwidth": bits, "symmetric": True, "group_size": GGUF_BLOCK}
    for key, wanted in fixed.items():
        if key in flat and flat[key][1] is not None and flat[key][1] != wanted:
            raise EditConfigError(
                f"{flat[key][0]}: {grid} fixes {key} = {wanted}; drop the key or the grid"
            )
    for key in ("clamp_max_ratio", "clamp_percentile", "clamp_ratio"):
        if key in flat and flat[key][1]:
            raise EditConfigError(f"{flat[key][0]}: {grid} takes no clipping; drop the key")
    return QuantSpec(bits=bits, symmetric=True, group_size=GGUF_BLOCK, grid=grid)


#: Values of the upstream ``scope`` key: which block layers are quantized.
SCOPES = ("all", "ffn", "attn")


def _one_of(flat: Mapping[str, tuple[str, Any]], keys: tuple[str, ...], what: str) -> None:
    given = [flat[k][0] for k in keys if k in flat and flat[k][1] is not None]
    if len(given) > 1:
        raise EditConfigError(f"{given[1]}: cannot be combined with {given[0]}; give {what}")


def _fraction(entry: tuple[str, Any] | None, high: float) -> float | None:
    """A float in ``[0, high]`` or ``None``."""
    if entry is None or entry[1] is None:
        return None
    path, value = entry
    rule = f"must be a number in [0, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EditConfigError(f"{path}: {rule}, got {value!r}")
    if not math.isfinite(value) or not 0.0 <= value <= high:
        raise EditConfigError(f"{path}: {rule}, got {value}")
    return float(value)


def _integer(
    entry: tuple[str, Any] | None, default: int | None, low: int, high: int | None
) -> int | None:
    if entry is None:
        return default
    path, value = entry
    if value is None and default is None:
        return None
    bounds = f"{low}..{high}" if high is not None else f">= {low}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise EditConfigError(f"{path}: must be an integer {bounds}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise EditConfigError(f"{path}: must be an integer {bounds}, got {value}")
    return value


def _number(entry: tuple[str, Any] | None, low: float, high: float) -> float | None:
    """A float in ``(low, high]`` or ``None``."""
    if entry is None or entry[1] is None:
        return None
    path, value = entry
    rule = f"must be a number in ({low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EditConfigError(f"{path}: {rule}, got {value!r}")
    if not math.isfinite(value) or not low < value <= high:
        raise EditConfigError(f"{path}: {rule}, got {value}")
    return float(value)


def _boolean(entry: tuple[str, Any] | None, default: bool) -> bool:
    if entry is None:
        return default
    path, value = entry
    if not isinstance(value, bool):
        raise EditConfigError(f"{path}: must be true or false, got {value!r}")
    return value


def _patterns(entry: tuple[str, Any] | None, require_some: bool) -> tuple[str, ...] | None:
    if entry is None or entry[1] is None:
        return None
    path, value = entry
    if not isinstance(value, (list, tuple)):
        raise EditConfigError(
            f"{path}: must be a list of module-name patterns, got {type(value).__name__} {value!r}"
        )
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise EditConfigError(f"{path}: patterns must be non-empty strings, got {item!r}")
    if require_some and not value:
        raise EditConfigError(f"{path}: lists no pattern; omit the key for the default scope")
    return tuple(value)
