"""Paired statistics on per-window losses: perplexities, their ratio and a bootstrap interval.

With ``b_i`` and ``e_i`` the baseline's and the edited model's loss on window ``i`` (mean
token NLL for perplexity) and ``d_i = e_i - b_i``, every window predicting the same number
of tokens:

* perplexity of each model: ``exp(mean(b))``, ``exp(mean(e))``;
* their ratio: ``exp(mean(d))`` (exactly ``ppl_edited / ppl_baseline``);
* the interval: a percentile bootstrap of ``mean(d)`` over windows (resampling whole
  windows with replacement keeps each pair together), mapped through ``exp``. The
  resampling generator is ``numpy.random.default_rng(seed)``, so the interval is
  reproducible from the report's pairs and seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_METHOD = "percentile bootstrap of the mean paired NLL difference (windows resampled)"


@dataclass(frozen=True)
class RatioInterval:
    """The ratio ``exp(mean(d))`` and its two-sided bootstrap interval."""

    point: float
    lower: float
    upper: float
    confidence: float
    seed: int
    resamples: int


def differences(pairs: Sequence[Sequence[float]]) -> np.ndarray:
    """``e_i - b_i`` for each ``(b_i, e_i)`` pair."""
    data = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    return data[:, 1] - data[:, 0]


def perplexity(losses: Sequence[float]) -> float:
    return math.exp(float(np.mean(np.asarray(losses, dtype=np.float64))))


def bootstrap_mean_interval(
    values: np.ndarray, confidence: float, seed: int, resamples: int
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(values)``."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(values), size=(resamples, len(values)))
    means = values[index].mean(axis=1)
    alpha = 1.0 - confidence
    lower, upper = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lower), float(upper)


def ratio_interval(
    pairs: Sequence[Sequence[float]], confidence: float, seed: int, resamples: int = 2000
) -> RatioInterval:
    """The ratio of perplexities and its bootstrap interval (see the module docstring)."""
    d = differences(pairs)
    if len(d) == 0:
        raise ValueError("no pairs to summarise")
    lower, upper = bootstrap_mean_interval(d, confidence, seed, resamples)
    return RatioInterval(
        point=math.exp(float(d.mean())),
        lower=math.exp(lower),
        upper=math.exp(upper),
        confidence=confidence,
        seed=seed,
        resamples=resamples,
    )
