"""The ``rmt`` guard: singular values beyond the Marchenko–Pastur bulk edge, before vs after."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from invarlock.core.api import Guard
from invarlock.guards._options import (
    check_choice,
    check_int,
    check_patterns,
    check_policy,
    check_positive,
)
from invarlock.guards._results import METRICS_CAP, judge, name_list, not_prepared, result
from invarlock.guards.families import FAMILIES, weight_family
from invarlock.guards.scope import ScopedWeight, edit_coverage, edited_layers, resolve_scope
from invarlock.guards.tiers import DEFAULT_TIER, family_bands, tier_settings

METHODS = ("inertia", "lowrank", "svd")


@dataclass
class _Baseline:
    weight: ScopedWeight
    family: str
    shape: tuple[int, ...]
    count: int
    edge: float
    rank: int


class RMTGuard(Guard):
    """Abort when an edit changes how many singular values stand out of the random bulk.

    A trained weight's singular values above the Marchenko–Pastur bulk edge
    ``s(√m + √n)`` (s² the mean squared entry, plus ``margin``) are the directions training
    put into it. Quantization noise raises the bulk and swallows the weaker ones; a
    corrupted weight grows or loses them. prepare() counts them per in-scope weight,
    validate() counts again, and per family of weights (attention, MLP, embeddings) the
    changed fraction ``Σ|count' − count| / Σ count`` is judged against that family's
    ``(warn, abort)`` ε-band. ``method: inertia`` counts exactly without computing the
    spectrum (Sylvester inertia of ``WᵀW − edge²I`` by LDLᵀ); ``lowrank`` counts from the
    top singular values by randomized subspace iteration (``torch.svd_lowrank``), each
    with a residual error bound, falling back to inertia whenever the bound leaves the
    count uncertain (nearly always on trained weights, whose spectrum has no gap at the
    edge); ``svd`` uses the full spectrum (the reference). Default scope: the
    Linear/Conv1D weights inside the transformer blocks.

    Args:
        tier: Band set (``conservative``, ``balanced``, ``aggressive``); set from
            ``guards.tier`` unless this block names its own.
        epsilon: Per-family bands, a mapping family → (warn, abort), on the changed fraction of
            outliers, replacing the tier's for the families given.
        margin: Relative margin above the bulk edge (None: the tier's).
        method: ``inertia`` (exact count), ``lowrank`` (randomized, inertia fallback) or
            ``svd`` (full spectrum).
        rank: Singular values ``lowrank`` computes first (doubled when all are outliers).
        niter: Subspace iterations of ``lowrank``.
        include: fnmatch patterns on parameter names replacing the default scope.
        exclude: fnmatch patterns on parameter names removed from the scope.
    """

    name: ClassVar[str] = "rmt"
    requires: ClassVar[tuple[str, ...]] = ("torch",)

    def __init__(
        self,
        tier: str = DEFAULT_TIER,
        epsilon: dict[str, list[float]] | None = None,
        margin: float | None = None,
        method: str = "inertia",
        rank: int = 16,
        niter: int = 2,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
    ) -> None:
        settings = tier_settings(self.name, tier)
        self.tier = tier
        self.epsilon = family_bands(self.name, "epsilon", epsilon, settings["epsilon"])
        self.margin = settings["margin"] if margin is None else margin
        self.margin = check_positive(self.name, "margin", self.margin, allow_zero=True)
        self.method = check_choice(self.name, "method", method, METHODS)
        self.rank = check_int(self.name, "rank", rank, minimum=1)
        self.niter = check_int(self.name, "niter", niter, minimum=0)
        self.include = check_patterns(self.name, "include", include)
        self.exclude = check_patterns(self.name, "exclude", exclude)
        self._baselines: list[_Baseline] | None = None

    def _count(self, tensor: Any, rank: int) -> Any:
        import torch

        from invarlock.guards.mp import count_inertia, count_lowrank, count_svd

        if not bool(torch.isfinite(tensor.detach().sum())):
            return None
        if self.method == "svd":
            return count_svd(tensor, self.margin)
        if self.method == "lowrank":
            return count_lowrank(tensor, self.margin, rank=rank, niter=self.niter)
        return count_inertia(tensor, self.margin)

    def prepare(self, model: Any, adapter: Any, calib: Any, policy: Any) -> dict[str, Any]:
        """Count the outliers of every in-scope weight."""
        check_policy(self.name, policy)
        self._baselines = None
        scope = resolve_scope(model, self.include, self.exclude)
        if scope.problems:
            return {"ready": False, "message": f"rmt guard: {'; '.join(scope.problems)}"}
        baselines, skipped, exact = [], [], 0
        for weight in scope.weights:
            tensor = model.get_parameter(weight.name)
            counted = self._count(tensor, self.rank)
            if counted is None or counted.edge == 0.0:
                skipped.append(weight.name)
                continue
            exact += counted.exact
            rank = max(self.rank, counted.rank)
            baselines.append(
                _Baseline(
                    weight,
                    weight_family(weight.name),
                    tuple(tensor.shape),
                    counted.count,
                    counted.edge,
                    rank,
                )
            )
        self._baselines = baselines
        warnings = list(scope.notes)
        if skipped:
            warnings.append(f"skipped zero or non-finite weights: {name_list(skipped)}")
        return {
            "ready": True,
            "checked": len(baselines),
            "container": scope.container,
            "method": self.method,
            "exact_counts": exact,
            "outliers": {f: sum(b.count for b in baselines if b.family == f) for f in FAMILIES},
            "skipped": skipped[:METRICS_CAP],
            "warnings": warnings,
        }

    def validate(self, model: Any, adapter: Any, context: Mapping[str, Any]) -> dict[str, Any]:
        """Count again and judge each family's changed fraction of outliers."""
        if self._baselines is None:
            raise not_prepared(self.name)
        edited = edited_layers(context)
        layers, broken, exact = [], [], 0
        for base in self._baselines:
            problem, counted = self._recount(model, base)
            if problem is not None:
                broken.append(problem)
                continue
            exact += counted.exact
            layers.append(
                {
                    "name": base.weight.name,
                    "family": base.family,
                    "before": base.count,
                    "after": counted.count,
                    "edge_before": base.edge,
                    "edge_after": counted.edge,
                    "bound": counted.bound,
                    "exact": counted.exact,
                }
            )
        families = _family_rows(layers, self.epsilon)
        layers.sort(key=lambda row: abs(row["after"] - row["before"]), reverse=True)
        metrics: dict[str, Any] = {
            "checked": len(self._baselines),
            "method": self.method,
            "exact_counts": exact,
            "families": families,
            "max_changed_fraction": max((f["changed_fraction"] for f in families), default=0.0),
            "layers": layers[:METRICS_CAP],
            **edit_coverage([b.weight for b in self._baselines], edited),
        }
        if broken:
            metrics["broken"] = broken[:METRICS_CAP]
            more = f" (and {len(broken) - 1} more weights)" if len(broken) > 1 else ""
            return result("abort", f"{broken[0]}{more}", metrics)
        actions = [f["action"] for f in families]
        action = "abort" if "abort" in actions else "warn" if "warn" in actions else "continue"
        if action == "continue":
            total = sum(f["before"] for f in families)
            message = (
                f"outliers beyond the bulk edge of {len(layers)} weights within their bands "
                f"({total} before, worst family changed {metrics['max_changed_fraction']:.1%})"
            )
            return result(action, message, metrics)
        flagged = [f for f in families if f["action"] == action]
        worst = max(flagged, key=lambda f: f["changed_fraction"] / f["limit"])
        top = next(row for row in layers if row["family"] == worst["family"])
        message = (
            f"{worst['family']} weights: {worst['changed_fraction']:.1%} of outliers beyond the "
            f"bulk edge changed ({worst['before']} → {worst['after']}; limit "
            f"{worst['limit']:.1%}); most in {top['name']!r} ({top['before']} → {top['after']})"
        )
        return result(action, message, metrics)

    def _recount(self, model: Any, base: _Baseline) -> tuple[str | None, Any]:
        name = base.weight.name
        try:
            tensor = model.get_parameter(name)
        except AttributeError:
            return f"weight {name!r} no longer exists", None
        if tuple(tensor.shape) != base.shape:
            return f"weight {name!r} changed shape {base.shape} → {tuple(tensor.shape)}", None
        counted = self._count(tensor, max(base.rank, base.count + 8))
        if counted is None:
            return f"weight {name!r} holds non-finite values", None
        return None, counted


def _family_rows(layers: list[dict[str, Any]], bands: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per family: outliers before/after, changed fraction and its judgement."""
    rows = []
    for family in FAMILIES:
        members = [row for row in layers if row["family"] == family]
        if not members:
            continue
        before = sum(row["before"] for row in members)
        after = sum(row["after"] for row in members)
        changed = sum(abs(row["after"] - row["before"]) for row in members)
        fraction = changed / max(before, 1)
        warn, abort = bands[family]
        action = judge(fraction, warn, abort)
        rows.append(
            {
                "family": family,
                "weights": len(members),
                "before": before,
                "after": after,
                "changed_fraction": fraction,
                "limit": abort if action == "abort" else warn,
                "action": action,
            }
        )
    return rows
