"""Validation of guard options (YAML values) with messages that name the option."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def _where(guard: str, option: str) -> str:
    return f"{guard} guard: option {option!r}"


def check_bool(guard: str, option: str, value: Any) -> bool:
    """Return ``value`` if it is a bool, else raise TypeError."""
    if not isinstance(value, bool):
        raise TypeError(f"{_where(guard, option)} must be true or false, got {value!r}")
    return value


def check_int(guard: str, option: str, value: Any, minimum: int) -> int:
    """Return ``value`` if it is an int ≥ ``minimum`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{_where(guard, option)} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{_where(guard, option)} must be >= {minimum}, got {value}")
    return value


def check_positive(guard: str, option: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is a finite number > 0 (≥ 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{_where(guard, option)} must be a number, got {value!r}")
    number = float(value)
    too_small = number < 0 if allow_zero else number <= 0
    if not math.isfinite(number) or too_small:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{_where(guard, option)} must be a finite number {bound}, got {value!r}")
    return number


def check_thresholds(
    guard: str, warn_option: str, warn: Any, abort_option: str, abort: Any
) -> tuple[float, float]:
    """Validate a warn/abort pair: both positive numbers with ``warn <= abort``."""
    warn_value = check_positive(guard, warn_option, warn)
    abort_value = check_positive(guard, abort_option, abort)
    if warn_value > abort_value:
        raise ValueError(
            f"{guard} guard: option {warn_option!r} ({warn_value}) must not exceed "
            f"{abort_option!r} ({abort_value})"
        )
    return warn_value, abort_value


def check_patterns(guard: str, option: str, value: Any) -> tuple[str, ...]:
    """Normalize ``None``, one pattern or a list of fnmatch patterns to a tuple of strings."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise TypeError(f"{_where(guard, option)} must be a list of patterns, got {value!r}")
    patterns = tuple(value)
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not pattern:
            raise TypeError(
                f"{_where(guard, option)}[{index}] must be a non-empty string, got {pattern!r}"
            )
    return patterns


def check_choice(
    guard: str, option: str, value: Any, implemented: tuple[str, ...], planned: tuple[str, ...] = ()
) -> str:
    """Return ``value`` if it is one of ``implemented``; ``planned`` values get their own error."""
    if value in implemented:
        return str(value)
    choices = ", ".join(repr(choice) for choice in implemented)
    if value in planned:
        raise ValueError(f"{_where(guard, option)}={value!r} is not implemented yet; use {choices}")
    raise ValueError(f"{_where(guard, option)} must be one of {choices}, got {value!r}")


def check_policy(guard: str, policy: Any) -> Mapping[str, Any]:
    """The guard's YAML block handed to ``prepare``: a mapping or ``None``."""
    if policy is None:
        return {}
    if not isinstance(policy, Mapping):
        raise TypeError(f"{guard} guard: policy must be a mapping or None, got {policy!r}")
    return policy
