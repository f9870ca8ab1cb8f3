"""Policy tiers: the documented band sets of the built-in guards.

``guards.tier`` (``conservative`` / ``balanced`` / ``aggressive``) picks one band set for
every built-in guard; an option set in a guard's own YAML block wins over its tier. The
numbers were calibrated on the default model (SmolLM2-135M) with ``benchmarks/verdicts.py``;
docs/guards.md explains how. A band is a ``(warn, abort)`` pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from invarlock.core.options import OptionError, coerce
from invarlock.core.options import band as checked_band
from invarlock.guards.families import FAMILIES

#: The tier names, as a type (a guard's ``tier`` option is declared with it).
Tier = Literal["conservative", "balanced", "aggressive"]
TIERS: tuple[str, ...] = get_args(Tier)
DEFAULT_TIER = "balanced"

Band = tuple[float, float]


def _per_family(attention: Band, mlp: Band, embeddings: Band) -> dict[str, Band]:
    return {"attention": attention, "mlp": mlp, "embeddings": embeddings, "other": mlp}


#: guard → tier → option → value. Measured on SmolLM2-135M (docs/guards.md): int8 moves
#: σ ≤ 0.06 %, outlier counts ≤ 0.07 %, channel std ≤ 0.5 %, channel means ≤ 0.007 std;
#: int4 g128 asymmetric (+19 % perplexity) moves them ≥ 1.6 %, ≥ 1.05 %, ≥ 3.7 %, ≥ 0.053.
TIER_BANDS: dict[str, dict[str, dict[str, Any]]] = {
    "spectral": {
        "conservative": {
            "bands": _per_family((0.002, 0.005), (0.002, 0.005), (0.002, 0.005)),
            "z_max": 4.0,
        },
        "balanced": {
            "bands": _per_family((0.003, 0.01), (0.003, 0.01), (0.003, 0.01)),
            "z_max": 6.0,
        },
        "aggressive": {
            "bands": _per_family((0.01, 0.03), (0.01, 0.03), (0.01, 0.03)),
            "z_max": 10.0,
        },
    },
    "rmt": {
        "conservative": {
            "margin": 0.05,
            "epsilon": _per_family((0.002, 0.005), (0.002, 0.005), (0.002, 0.005)),
        },
        "balanced": {
            "margin": 0.05,
            "epsilon": _per_family((0.003, 0.008), (0.003, 0.008), (0.003, 0.008)),
        },
        "aggressive": {
            "margin": 0.05,
            "epsilon": _per_family((0.01, 0.03), (0.01, 0.03), (0.01, 0.03)),
        },
    },
    "variance": {
        "conservative": {
            "weights": (0.01, 0.02),
            "mean_shift": (0.02, 0.03),
            "activations": (0.01, 0.02),
        },
        "balanced": {
            "weights": (0.015, 0.03),
            "mean_shift": (0.025, 0.04),
            "activations": (0.02, 0.05),
        },
        "aggressive": {
            "weights": (0.04, 0.08),
            "mean_shift": (0.05, 0.1),
            "activations": (0.05, 0.1),
        },
    },
}


def tier_settings(guard: str, tier: Any) -> dict[str, Any]:
    """The band set of ``guard`` at ``tier`` (validated), as a fresh dict."""
    name = coerce(tier, Tier, f"guards.{guard}.tier")
    return dict(TIER_BANDS[guard][name])


def band(guard: str, options: tuple[str, str], given: tuple[Any, Any], default: Band) -> Band:
    """A checked ``(warn, abort)`` band: the options given win, the tier fills the rest."""
    warn = default[0] if given[0] is None else given[0]
    abort = default[1] if given[1] is None else given[1]
    return checked_band(f"guards.{guard}.{options[0]}", f"guards.{guard}.{options[1]}", warn, abort)


def family_bands(
    guard: str,
    option: str,
    value: Any,
    defaults: Mapping[str, Band],
    uniform: Band | None = None,
) -> dict[str, Band]:
    """Per-family bands: the tier's, replaced by ``uniform`` (one band for every family) and
    then by ``value`` (a mapping ``family: [warn, abort]``) where given."""
    bands = {family: uniform or defaults[family] for family in FAMILIES}
    key = f"guards.{guard}.{option}"
    if value is None:
        return bands
    for family, pair in coerce(value, dict[str, tuple[Any, Any]], key).items():
        if family not in FAMILIES:
            raise OptionError(
                f"unknown family {family!r}; families: {', '.join(FAMILIES)}", key_path=key
            )
        bands[family] = checked_band(f"{key}.{family}[0]", f"{key}.{family}[1]", *pair)
    return bands
