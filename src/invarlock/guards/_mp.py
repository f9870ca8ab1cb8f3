"""Counting singular values beyond the Marchenko–Pastur bulk edge of a weight matrix.

A ``m × n`` matrix of i.i.d. entries with variance s² has its singular values inside
``[s(√n − √m), s(√n + √m)]`` (Marchenko–Pastur, m ≤ n); singular values above the upper
edge are the structure training put into the weight. s² is taken as the mean squared
entry, ``‖W‖²_F / (m·n)``, of the matrix itself, so the count is scale-free.

Two ways to count: :func:`count_exact` computes every singular value
(``torch.linalg.svdvals``); :func:`count_fast` computes the top few by randomized subspace
iteration (``torch.svd_lowrank``), whose Ritz values never exceed the true ones, with a
residual error bound per value. When the bound of the largest value left out reaches the
edge, or every computed value is above it, the fast count falls back to the exact one.

This module imports torch; guard modules import it inside their methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class OutlierCount:
    """Singular values of one weight above its (margin-raised) bulk edge."""

    count: int
    #: The bulk edge s(√m + √n)·(1 + margin).
    edge: float
    #: The largest singular value (estimate in fast mode).
    top: float
    #: Residual bound of the largest value counted out (0 when exact).
    bound: float
    #: Whether the count came from the full spectrum.
    exact: bool
    #: Columns of the randomized subspace used (0 when exact).
    rank: int


def bulk_edge(matrix: torch.Tensor, margin: float) -> float:
    """s(√m + √n)·(1 + margin) with s² the mean squared entry of ``matrix``."""
    rows, columns = matrix.shape
    scale = float(matrix.norm()) / math.sqrt(rows * columns)
    return scale * (math.sqrt(rows) + math.sqrt(columns)) * (1.0 + margin)


def _as_float(weight: torch.Tensor) -> torch.Tensor:
    dtype = torch.float64 if weight.dtype == torch.float64 else torch.float32
    matrix = weight.detach().to(dtype)
    return matrix.T if matrix.shape[0] < matrix.shape[1] else matrix  # tall: faster LAPACK


def count_exact(weight: torch.Tensor, margin: float) -> OutlierCount:
    """Count from the full spectrum (``torch.linalg.svdvals``)."""
    matrix = _as_float(weight)
    edge = bulk_edge(matrix, margin)
    values = torch.linalg.svdvals(matrix)
    count = int((values > edge).sum())
    return OutlierCount(count, edge, float(values[0]), 0.0, True, 0)


def count_fast(
    weight: torch.Tensor, margin: float, rank: int = 16, niter: int = 2, seed: int = 0
) -> OutlierCount:
    """Count from the top ``rank`` singular values (grown until the count fits), falling
    back to :func:`count_exact` when the residual bound leaves the count uncertain."""
    matrix = _as_float(weight)
    if not bool(torch.isfinite(matrix.sum())):
        return OutlierCount(0, math.nan, math.nan, math.nan, False, 0)
    edge = bulk_edge(matrix, margin)
    smallest = min(matrix.shape)
    q = min(rank, smallest)
    while 2 * q <= smallest:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            left, values, right = torch.svd_lowrank(matrix, q=q, niter=niter)
        count = int((values > edge).sum())
        if count < q:
            residuals = (matrix @ right - left * values).norm(dim=0)
            bound = float(residuals[count])
            if float(values[count]) + bound < edge:  # the first value left out is certain
                return OutlierCount(count, edge, float(values[0]), bound, False, q)
            break
        q *= 2
    return count_exact(weight, margin)
