"""The ``eval:`` section of a run configuration, validated into an :class:`EvalSection`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from invarlock.data.settings import int_key

if TYPE_CHECKING:
    from invarlock.runner.config import _Checker

GATE_ON = ("upper", "point")
EVAL_KEYS = (
    "enabled",
    "metric",
    "batch_size",
    "max_ppl_ratio",
    "gate_on",
    "confidence",
    "early_stop",
    "baseline_cache",
    "bootstrap_resamples",
)


@dataclass(frozen=True)
class EvalSection:
    """How the paired evaluation runs and what the gate demands (see docs/evaluation.md)."""

    enabled: bool = True
    metric: str = "perplexity"
    batch_size: int = 4
    max_ppl_ratio: float | None = 1.10
    gate_on: str = "upper"
    confidence: float = 0.95
    early_stop: bool = True
    baseline_cache: bool = True
    bootstrap_resamples: int = 2000

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_eval(check: _Checker, data: Mapping[str, Any]) -> EvalSection | None:
    """The validated ``eval:`` section; ``None`` when the run has no dataset either."""
    if data.get("dataset") is None and data.get("eval") is None:
        return None
    raw = check.mapping(data, "eval")
    check.keys(raw, "eval", EVAL_KEYS)
    defaults = EvalSection()
    max_ratio = raw.get("max_ppl_ratio", defaults.max_ppl_ratio)
    if max_ratio is not None and (
        isinstance(max_ratio, bool) or not isinstance(max_ratio, (int, float)) or max_ratio <= 0
    ):
        raise check.fail("eval.max_ppl_ratio", f"must be a number > 0 or null, got {max_ratio!r}")
    gate_on = raw.get("gate_on", defaults.gate_on)
    if gate_on not in GATE_ON:
        raise check.fail("eval.gate_on", f"must be one of {', '.join(GATE_ON)}, got {gate_on!r}")
    confidence = raw.get("confidence", defaults.confidence)
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, (int, float))
        or not 0.5 <= confidence < 1
    ):
        raise check.fail("eval.confidence", f"must be a number in [0.5, 1), got {confidence!r}")
    return EvalSection(
        enabled=check.boolean(raw, "eval", "enabled", defaults.enabled),
        metric=check.string(raw, "eval", "metric", defaults.metric),
        batch_size=int_key(check, raw, "eval", "batch_size", defaults.batch_size, 1) or 1,
        max_ppl_ratio=None if max_ratio is None else float(max_ratio),
        gate_on=gate_on,
        confidence=float(confidence),
        early_stop=check.boolean(raw, "eval", "early_stop", defaults.early_stop),
        baseline_cache=check.boolean(raw, "eval", "baseline_cache", defaults.baseline_cache),
        bootstrap_resamples=int_key(
            check, raw, "eval", "bootstrap_resamples", defaults.bootstrap_resamples, 100
        )
        or 100,
    )
