"""Top singular value of a weight matrix by Golub–Kahan–Lanczos (accelerated power iteration).

Plain power iteration converges at the rate σ₂/σ₁, which is slow for the clustered
spectra of (randomly initialized or lightly trained) transformer weights: 70–350
iterations for 1e-4 accuracy on GPT-2-small shapes. Lanczos bidiagonalization builds the
same Krylov space as power iteration started from the same vector but extracts σ₁ from all
of it, reaching 1e-5 accuracy in 20–35 steps. Started from a converged right singular
vector of a nearby matrix (the weight before the edit) it stops after a few steps.

This module imports torch; guard modules import it inside their methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class TopSingular:
    """Result of :func:`top_singular`."""

    sigma: float
    #: Unit right singular vector estimate (float32/float64, on the weight's device).
    vector: torch.Tensor
    #: Lanczos steps taken (each costs one product with W and one with Wᵀ).
    steps: int
    #: Whether the residual ‖Wᵀu − σv‖ reached ``tol·σ`` within ``max_steps``.
    converged: bool
    #: Error bound: some singular value of W lies within ``bound`` of ``sigma`` (the Ritz
    #: residual); ``sigma`` never exceeds σ₁, so σ₁ ∈ [sigma, sigma + bound] when the start
    #: vector is not orthogonal to σ₁'s singular vector.
    bound: float = 0.0


def random_start(columns: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """A reproducible random start vector of length ``columns`` on ``device``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(columns, generator=generator).to(device)


def _compute_dtype(weight: torch.Tensor) -> torch.dtype:
    return torch.float64 if weight.dtype == torch.float64 else torch.float32


def _orthogonalize(vector: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Remove the components along the rows of ``basis`` (classical Gram–Schmidt, twice)."""
    for _ in range(2):
        vector = vector - basis.T @ (basis @ vector)
    return vector


def _ritz(alphas: list[float], betas: list[float]) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Largest singular triplet (θ, x, y) of the upper bidiagonal matrix (alphas, betas)."""
    k = len(alphas)
    bidiagonal = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if k > 1:
        bidiagonal += torch.diag(torch.tensor(betas[: k - 1], dtype=torch.float64), 1)
    left, values, right_t = torch.linalg.svd(bidiagonal)
    return float(values[0]), left[:, 0], right_t[0]


def top_singular(
    weight: torch.Tensor, start: torch.Tensor, max_steps: int, tol: float
) -> TopSingular:
    """Estimate the largest singular value σ₁ of the 2-D ``weight`` and its right vector.

    ``start`` (length ``weight.shape[1]``) seeds the Krylov space; a good guess (the vector
    returned for the weight before an edit) converges in a few steps. Stops when the Ritz
    residual is at most ``tol·σ`` (the error of σ is at most that, usually far smaller) or
    after ``max_steps``. σ is NaN when the weight holds non-finite values.
    """
    if weight.ndim != 2:
        raise ValueError(f"top_singular needs a 2-D weight, got shape {tuple(weight.shape)}")
    dtype = _compute_dtype(weight)
    matrix = weight.detach().to(dtype)
    rows, columns = matrix.shape
    if start.shape != (columns,):
        raise ValueError(f"start vector has shape {tuple(start.shape)}, weight needs ({columns},)")
    v = start.detach().to(device=matrix.device, dtype=dtype)
    v_norm = float(v.norm())
    if not math.isfinite(v_norm) or v_norm == 0.0:
        raise ValueError("start vector must be finite and non-zero")

    right = torch.empty(max_steps + 1, columns, dtype=dtype, device=matrix.device)
    left = torch.empty(max_steps, rows, dtype=dtype, device=matrix.device)
    right[0] = v / v_norm
    p = matrix @ right[0]
    alpha = float(p.norm())
    if not math.isfinite(alpha):
        return TopSingular(math.nan, right[0].clone(), 1, False, math.nan)
    if alpha == 0.0:  # W·v = 0: W is zero (a random start is never in a non-trivial kernel)
        return TopSingular(0.0, right[0].clone(), 1, True)
    left[0] = p / alpha
    alphas, betas = [alpha], []
    tiny = torch.finfo(dtype).eps

    for k in range(1, max_steps + 1):
        r = matrix.T @ left[k - 1] - alphas[-1] * right[k - 1]
        r = _orthogonalize(r, right[:k])
        beta = float(r.norm())
        theta, x, y = _ritz(alphas, betas)
        residual = beta * abs(float(x[-1]))
        converged = residual <= tol * theta or beta <= tiny * theta
        if converged or k == max_steps or not math.isfinite(beta):
            vector = right[:k].T @ y.to(dtype=dtype, device=matrix.device)
            vector = vector / vector.norm()
            return TopSingular(theta, vector, k, converged and math.isfinite(beta), residual)
        right[k] = r / beta
        betas.append(beta)
        p = _orthogonalize(matrix @ right[k] - beta * left[k - 1], left[:k])
        alpha = float(p.norm())
        if alpha <= tiny * theta:  # invariant subspace: the Ritz values are exact
            alphas.append(0.0)
            theta, _, y = _ritz(alphas, betas)
            vector = right[: k + 1].T @ y.to(dtype=dtype, device=matrix.device)
            return TopSingular(theta, vector / vector.norm(), k + 1, True)
        left[k] = p / alpha
        alphas.append(alpha)
    raise AssertionError("unreachable")  # pragma: no cover
