"""Paired statistics against references (scipy), and coverage checked by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from invarlock.evaluation.sequence import (
    MIN_WINDOWS,
    sequence_bounds,
    student_factor,
    student_t_quantile,
)
from invarlock.evaluation.stats import (
    bootstrap_mean_interval,
    differences,
    perplexity,
    ratio_interval,
)


def test_ratio_point_is_the_ratio_of_perplexities() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(4.0, 0.3, 12)
    edited = base + rng.normal(0.05, 0.02, 12)
    pairs = list(zip(base.tolist(), edited.tolist(), strict=True))
    ratio = ratio_interval(pairs, 0.95, seed=3)
    assert ratio.point == pytest.approx(perplexity(edited) / perplexity(base), rel=1e-12)
    assert perplexity(base) == pytest.approx(math.exp(base.mean()), rel=1e-12)
    assert ratio.lower < ratio.point < ratio.upper
    assert ratio_interval(pairs, 0.95, seed=3) == ratio  # reproducible from pairs and seed
    assert differences(pairs) == pytest.approx(edited - base)


@pytest.mark.parametrize("n", [12, 40])
def test_bootstrap_matches_scipy_percentile_bootstrap(n: int) -> None:
    rng = np.random.default_rng(n)
    d = rng.standard_t(5, n) * 0.1 + 0.02
    ours = bootstrap_mean_interval(d, 0.95, seed=1, resamples=20000)
    ref = sps.bootstrap(
        (d,), np.mean, confidence_level=0.95, n_resamples=20000, method="percentile", rng=2
    ).confidence_interval
    width = ref.high - ref.low
    assert ours[0] == pytest.approx(ref.low, abs=0.03 * width)
    assert ours[1] == pytest.approx(ref.high, abs=0.03 * width)


def test_bootstrap_interval_covers_the_mean_by_simulation() -> None:
    rng = np.random.default_rng(7)
    runs, hits = 400, 0
    for i in range(runs):
        d = rng.normal(0.1, 0.5, 30)
        low, high = bootstrap_mean_interval(d, 0.95, seed=i, resamples=1000)
        hits += low <= 0.1 <= high
    assert hits / runs >= 0.90  # percentile bootstrap at n=30: close to nominal 0.95


@pytest.mark.parametrize("dof", [3, 5, 11, 30])
def test_student_quantile_matches_scipy(dof: int) -> None:
    for p in (0.95, 0.975, 0.99):  # the levels of 90-98% two-sided intervals
        tolerance = 2e-2 if dof < 10 else 1e-3
        assert student_t_quantile(p, dof) == pytest.approx(sps.t.ppf(p, dof), rel=tolerance)


def test_sequence_matches_the_published_formula() -> None:
    """The normal-mixture boundary written out by hand from Waudby-Smith et al. (2021)."""
    x = np.array([0.3, -0.1, 0.2, 0.5, 0.0, 0.25, 0.1])
    t, alpha, planned = len(x), 0.05, 12
    s2 = x.var(ddof=1) * (sps.t.ppf(0.975, t - 1) / sps.norm.ppf(0.975)) ** 2
    rho2 = (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / (planned * s2)
    half = math.sqrt(
        2 * (t * s2 * rho2 + 1) / (t**2 * rho2) * math.log(math.sqrt(t * s2 * rho2 + 1) / alpha)
    )
    low, high = sequence_bounds(x, 0.95, planned)
    assert low == pytest.approx(x.mean() - half, rel=2e-3)
    assert high == pytest.approx(x.mean() + half, rel=2e-3)
    assert student_factor(t, alpha) > 1.0


@pytest.mark.parametrize("distribution", ["normal", "t3"])
@pytest.mark.parametrize("planned", [16, 64])
def test_sequence_covers_the_mean_at_every_look_by_simulation(
    distribution: str, planned: int
) -> None:
    """Time-uniform coverage: the mean stays inside at *all* looks in >= 95% of runs."""
    rng = np.random.default_rng(planned)
    runs, misses = 400, 0
    for _ in range(runs):
        if distribution == "normal":
            x, mean = rng.normal(0.3, 2.0, planned), 0.3
        else:
            x, mean = rng.standard_t(3, planned), 0.0
        for t in range(MIN_WINDOWS, planned + 1):
            low, high = sequence_bounds(x[:t], 0.95, planned)
            if not low <= mean <= high:
                misses += 1
                break
    tolerance = 3 * math.sqrt(0.05 * 0.95 / runs)
    assert misses / runs <= 0.05 + tolerance


def test_peeking_with_a_fixed_interval_would_inflate_errors() -> None:
    """The reason for the sequence: a fixed-sample 95% interval checked at every look misses
    far more often than 5%, where the sequence does not (same data)."""
    rng = np.random.default_rng(11)
    runs, fixed_misses, sequence_misses = 300, 0, 0
    for _ in range(runs):
        x = rng.normal(0.0, 1.0, 64)
        fixed = sequence = False
        for t in range(MIN_WINDOWS, 65):
            half = sps.t.ppf(0.975, t - 1) * x[:t].std(ddof=1) / math.sqrt(t)
            fixed |= abs(x[:t].mean()) > half
            low, high = sequence_bounds(x[:t], 0.95, 64)
            sequence |= not low <= 0.0 <= high
        fixed_misses += fixed
        sequence_misses += sequence
    assert fixed_misses / runs > 0.15
    assert sequence_misses / runs < 0.08
