"""The ``spectral`` guard: relative change of each weight's top singular value, per family."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from invarlock.core.options import at_least, coerce, in_range, positive
from invarlock.guards._results import METRICS_CAP, judge, name_list, not_prepared
from invarlock.guards.drift import DriftGuard, Verdict, skipped_note
from invarlock.guards.families import weight_family
from invarlock.guards.scope import Scope, ScopedWeight
from invarlock.guards.tiers import DEFAULT_TIER, Tier, band, family_bands


@dataclass
class _Baseline:
    weight: ScopedWeight
    family: str
    shape: tuple[int, ...]
    sigma: float
    bound: float  # error bound of sigma (0 when exact)
    vector: Any  # torch.Tensor: the converged right singular vector


class SpectralGuard(DriftGuard):
    """Abort when an edit moves a weight's spectral norm (top singular value) too far.

    prepare() computes σ of every in-scope weight by Lanczos-accelerated power iteration
    and keeps its right singular vector; validate() recomputes σ' warm-started from that
    vector (a few steps) and judges the relative change |σ'−σ|/σ against the band of the
    weight's family (attention, MLP, embeddings). Every σ carries its Ritz-residual error
    bound; where the bound could move a change across a band edge, σ is recomputed exactly
    (``torch.linalg.svdvals``). Within each family, a layer whose log-change stands out of
    the others' by more than ``z_max`` robust z-scores (median/MAD, scale floored at a
    tenth of the family's warn band) warns even inside the band. Default scope: the
    Linear/Conv1D weights inside the transformer blocks (the largest ``nn.ModuleList``).

    Args:
        max_rel_change: Abort when any weight's |σ'−σ|/σ exceeds this (every family;
            None: the tier's per-family bands).
        warn_rel_change: Warn when any weight's |σ'−σ|/σ exceeds this (≤ max_rel_change).
        bands: Per-family bands, a mapping family → (warn, abort), replacing the tier's for the
            families given (families: attention, mlp, embeddings, other).
        z_max: Warn when a layer's change is this many robust z-scores from its family's.
        iterations: Maximum Lanczos steps per weight (each one product with W and Wᵀ).
        tol: Stop when the Ritz residual is at most tol·σ (σ's error is at most that).
    """

    name: ClassVar[str] = "spectral"

    def __init__(
        self,
        tier: Tier = DEFAULT_TIER,
        max_rel_change: float | None = None,
        warn_rel_change: float | None = None,
        bands: dict[str, list[float]] | None = None,
        z_max: float | None = None,
        iterations: int = 100,
        tol: float = 1e-3,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
    ) -> None:
        super().__init__(tier, include, exclude)
        settings = self.settings
        uniform = None
        if max_rel_change is not None or warn_rel_change is not None:
            reference = settings["bands"]["mlp"]
            uniform = band(
                self.name,
                ("warn_rel_change", "max_rel_change"),
                (warn_rel_change, max_rel_change),
                reference,
            )
        self.bands = family_bands(self.name, "bands", bands, settings["bands"], uniform)
        self.z_max = positive(self.option("z_max"), settings["z_max"] if z_max is None else z_max)
        key = self.option("iterations")
        self.iterations = at_least(key, coerce(iterations, int, key), 1)
        key = self.option("tol")
        self.tol = in_range(key, positive(key, tol), 0.0, 1.0, open_low=True, open_high=True)

    @property
    def warn_rel_change(self) -> float:
        """The smallest warn band of any family."""
        return min(warn for warn, _ in self.bands.values())

    @property
    def max_rel_change(self) -> float:
        """The smallest abort band of any family."""
        return min(abort for _, abort in self.bands.values())

    @property
    def sigmas(self) -> dict[str, float]:
        """σ per in-scope weight captured by :meth:`prepare`."""
        if self._baselines is None:
            raise not_prepared(self.name)
        return {b.weight.name: b.sigma for b in self._baselines}

    def baseline(self, model: Any, scope: Scope, calib: Any) -> dict[str, Any]:
        """Compute σ (with its error bound) and its right singular vector per weight."""
        from invarlock.guards.linalg import random_start, top_singular

        baselines, skipped, exact, steps = [], [], [], 0
        for weight in scope.weights:
            tensor = model.get_parameter(weight.name)
            family = weight_family(weight.name)
            start = random_start(tensor.shape[1], tensor.device)
            # the baseline's error must be small next to the narrowest band it is judged by
            tol = min(self.tol, 0.1 * self.bands[family][0])
            top = top_singular(tensor, start, self.iterations, tol)
            steps += top.steps
            if not math.isfinite(top.sigma) or top.sigma == 0.0:
                skipped.append(weight.name)
                continue
            sigma, bound = top.sigma, top.bound
            if not top.converged:
                sigma, bound = exact_sigma(tensor), 0.0
                exact.append(weight.name)
            baselines.append(
                _Baseline(weight, family, tuple(tensor.shape), sigma, bound, top.vector)
            )
        self._baselines = baselines
        return {
            "checked": len(baselines),
            "steps": steps,
            "exact": len(exact),
            "skipped": skipped[:METRICS_CAP],
            "warnings": skipped_note(skipped),
        }

    def judge(self, model: Any, rows: list[dict[str, Any]]) -> Verdict:
        """Judge each weight's change against its family's band and its family's z-scores."""
        assert self._baselines is not None
        steps = sum(row.pop("steps") for row in rows)
        exact = sum(row["exact"] for row in rows)
        _add_z_scores(rows, self.bands)
        for row in rows:
            warn, abort = self.bands[row["family"]]
            row["action"] = judge(row["rel_change"], warn, abort)
            if row["action"] == "continue" and row["z"] > self.z_max:
                row["action"] = "warn"
        rows.sort(key=lambda row: (_SEVERITY[row["action"]], row["rel_change"]), reverse=True)
        metrics: dict[str, Any] = {
            "checked": len(self._baselines),
            "max_rel_change": max((row["rel_change"] for row in rows), default=0.0),
            "max_z": max((row["z"] for row in rows), default=0.0),
            "families": _family_summary(rows, self.bands),
            "worst": rows[:METRICS_CAP],
            "layers": [_layer(row) for row in rows[:METRICS_CAP]],
            "steps": steps,
            "exact_fallbacks": exact,
        }
        action = rows[0]["action"] if rows else "continue"
        if action == "continue":
            message = (
                f"spectral norms of {len(rows)} weights within {metrics['max_rel_change']:.2%} "
                f"of baseline (max z {metrics['max_z']:.1f})"
            )
            return action, message, metrics, []
        over = [row["name"] for row in rows if row["action"] == action]
        top = rows[0]
        warn, abort = self.bands[top["family"]]
        limit = abort if action == "abort" else warn
        if top["rel_change"] > limit:
            why = f"limit {limit:.2%} for {top['family']}"
        else:
            why = f"z = {top['z']:.1f} within {top['family']}, limit {self.z_max:g}"
        message = (
            f"spectral norm of {top['name']!r} changed by {top['rel_change']:.2%} "
            f"({top['sigma_before']:.4g} → {top['sigma_after']:.4g}; {why}); "
            f"{len(over)} weights over the limit: {name_list(over)}"
        )
        return action, message, metrics, []

    def compare(self, tensor: Any, base: _Baseline) -> tuple[str | None, Any]:
        """σ' of one weight (warm start from the baseline's vector; exact where the error
        bound straddles a band edge) and its relative change."""
        from invarlock.guards.linalg import top_singular

        name = base.weight.name
        top = top_singular(tensor, base.vector, self.iterations, self.tol)
        if not math.isfinite(top.sigma):
            return f"weight {name!r} holds non-finite values", None
        sigma = top.sigma
        change = abs(sigma - base.sigma) / base.sigma
        error = (base.bound + top.bound) / base.sigma
        straddled = any(abs(change - edge) <= error for edge in self.bands[base.family])
        exact = not top.converged or straddled
        if exact:
            sigma = exact_sigma(tensor)
            change = abs(sigma - base.sigma) / base.sigma
            error = base.bound / base.sigma
        row = {
            "name": name,
            "family": base.family,
            "sigma_before": base.sigma,
            "sigma_after": sigma,
            "rel_change": change,
            "error_bound": error,
            "exact": exact,
            "steps": top.steps,
        }
        return None, row


_SEVERITY = {"continue": 0, "warn": 1, "abort": 2}


def _layer(row: dict[str, Any]) -> dict[str, Any]:
    """A ``worst`` row in the report's shared per-layer shape (name, family, before, after)."""
    return {
        "name": row["name"],
        "family": row["family"],
        "before": row["sigma_before"],
        "after": row["sigma_after"],
        "rel_change": row["rel_change"],
        "error_bound": row["error_bound"],
        "z": row["z"],
    }


def exact_sigma(tensor: Any) -> float:
    """σ₁ from the full spectrum (``torch.linalg.svdvals``), the exact fallback."""
    import torch

    matrix = tensor.detach().float() if tensor.dtype != torch.float64 else tensor.detach()
    return float(torch.linalg.svdvals(matrix)[0])


def _add_z_scores(rows: list[dict[str, Any]], bands: Mapping[str, Any]) -> None:
    """Robust z of each row's log(σ'/σ) within its family (scale floored at warn/10)."""
    import statistics

    for family in {row["family"] for row in rows}:
        members = [row for row in rows if row["family"] == family]
        logs = [math.log(row["sigma_after"] / row["sigma_before"]) for row in members]
        center = statistics.median(logs)
        spread = 1.4826 * statistics.median(abs(x - center) for x in logs)
        scale = max(spread, 0.1 * bands[family][0])
        for row, value in zip(members, logs, strict=True):
            row["z"] = abs(value - center) / scale


def _family_summary(rows: list[dict[str, Any]], bands: Mapping[str, Any]) -> list[dict[str, Any]]:
    summary = []
    for family, (warn, abort) in bands.items():
        members = [row for row in rows if row["family"] == family]
        if members:
            summary.append(
                {
                    "family": family,
                    "weights": len(members),
                    "max_rel_change": max(row["rel_change"] for row in members),
                    "max_z": max(row["z"] for row in members),
                    "warn": warn,
                    "abort": abort,
                }
            )
    return summary
