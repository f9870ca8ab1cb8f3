"""The ``eval:`` section of a run configuration, validated into an :class:`EvalSection`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from invarlock.core.options import SectionReader, in_range, positive
from invarlock.data.settings import int_key

GateOn = Literal["upper", "point"]
GATE_ON: tuple[str, ...] = get_args(GateOn)
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


def parse_eval(check: SectionReader, data: Mapping[str, Any]) -> EvalSection | None:
    """The validated ``eval:`` section; ``None`` when the run has no dataset either."""
    if data.get("dataset") is None and data.get("eval") is None:
        return None
    raw = check.mapping(data, "eval")
    check.keys(raw, "eval", EVAL_KEYS)
    defaults = EvalSection()
    max_ratio = raw.get("max_ppl_ratio", defaults.max_ppl_ratio)
    if max_ratio is not None:
        max_ratio = positive("eval.max_ppl_ratio", max_ratio)
    gate_on = check.value(raw, "eval", "gate_on", GateOn, defaults.gate_on)
    confidence = check.value(raw, "eval", "confidence", float, defaults.confidence)
    in_range("eval.confidence", confidence, 0.5, 1.0, open_high=True)
    return EvalSection(
        enabled=check.value(raw, "eval", "enabled", bool, defaults.enabled),
        metric=check.string(raw, "eval", "metric", defaults.metric),
        batch_size=int_key(raw, "eval", "batch_size", defaults.batch_size, 1) or 1,
        max_ppl_ratio=max_ratio,
        gate_on=gate_on,
        confidence=confidence,
        early_stop=check.value(raw, "eval", "early_stop", bool, defaults.early_stop),
        baseline_cache=check.value(raw, "eval", "baseline_cache", bool, defaults.baseline_cache),
        bootstrap_resamples=int_key(
            raw, "eval", "bootstrap_resamples", defaults.bootstrap_resamples, 100
        )
        or 100,
    )
