"""The ``rmt`` guard: singular values beyond the Marchenko–Pastur bulk edge, before vs after."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

from invarlock.core.options import at_least, coerce, positive
from invarlock.guards._results import METRICS_CAP, judge
from invarlock.guards.drift import DriftGuard, Verdict, skipped_note
from invarlock.guards.families import FAMILIES, weight_family
from invarlock.guards.scope import Scope, ScopedWeight
from invarlock.guards.tiers import DEFAULT_TIER, Tier, family_bands

Method = Literal["inertia", "lowrank", "svd"]
METHODS: tuple[str, ...] = get_args(Method)


@dataclass
class _Baseline:
    weight: ScopedWeight
    family: str
    shape: tuple[int, ...]
    count: int
    edge: float
    rank: int


class RMTGuard(DriftGuard):
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
        epsilon: Per-family bands, a mapping family → (warn, abort), on the changed fraction of
            outliers, replacing the tier's for the families given.
        margin: Relative margin above the bulk edge (None: the tier's).
        method: ``inertia`` (exact count), ``lowrank`` (randomized, inertia fallback) or
            ``svd`` (full spectrum).
        rank: Singular values ``lowrank`` computes first (doubled when all are outliers).
        niter: Subspace iterations of ``lowrank``.
    """

    name: ClassVar[str] = "rmt"

    def __init__(
        self,
        tier: Tier = DEFAULT_TIER,
        epsilon: dict[str, list[float]] | None = None,
        margin: float | None = None,
        method: Method = "inertia",
        rank: int = 16,
        niter: int = 2,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
    ) -> None:
        super().__init__(tier, include, exclude)
        settings = self.settings
        self.epsilon = family_bands(self.name, "epsilon", epsilon, settings["epsilon"])
        self.margin = positive(
            self.option("margin"), settings["margin"] if margin is None else margin, allow_zero=True
        )
        self.method = coerce(method, Method, self.option("method"))
        key = self.option("rank")
        self.rank = at_least(key, coerce(rank, int, key), 1)
        key = self.option("niter")
        self.niter = at_least(key, coerce(niter, int, key), 0)

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

    def baseline(self, model: Any, scope: Scope, calib: Any) -> dict[str, Any]:
        """Count the outliers of every in-scope weight."""
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
        return {
            "checked": len(baselines),
            "method": self.method,
            "exact_counts": exact,
            "outliers": {f: sum(b.count for b in baselines if b.family == f) for f in FAMILIES},
            "skipped": skipped[:METRICS_CAP],
            "warnings": skipped_note(skipped),
        }

    def compare(self, tensor: Any, base: _Baseline) -> tuple[str | None, Any]:
        """Count one weight's outliers again."""
        counted = self._count(tensor, max(base.rank, base.count + 8))
        if counted is None:
            return f"weight {base.weight.name!r} holds non-finite values", None
        row = {
            "name": base.weight.name,
            "family": base.family,
            "before": base.count,
            "after": counted.count,
            "edge_before": base.edge,
            "edge_after": counted.edge,
            "bound": counted.bound,
            "exact": counted.exact,
        }
        return None, row

    def judge(self, model: Any, rows: list[dict[str, Any]]) -> Verdict:
        """Judge each family's changed fraction of outliers."""
        assert self._baselines is not None
        layers = rows
        families = _family_rows(layers, self.epsilon)
        layers.sort(key=lambda row: abs(row["after"] - row["before"]), reverse=True)
        metrics: dict[str, Any] = {
            "checked": len(self._baselines),
            "method": self.method,
            "exact_counts": sum(row["exact"] for row in layers),
            "families": families,
            "max_changed_fraction": max((f["changed_fraction"] for f in families), default=0.0),
            "layers": layers[:METRICS_CAP],
        }
        actions = [f["action"] for f in families]
        action = "abort" if "abort" in actions else "warn" if "warn" in actions else "continue"
        if action == "continue":
            total = sum(f["before"] for f in families)
            message = (
                f"outliers beyond the bulk edge of {len(layers)} weights within their bands "
                f"({total} before, worst family changed {metrics['max_changed_fraction']:.1%})"
            )
            return action, message, metrics, []
        flagged = [f for f in families if f["action"] == action]
        worst = max(flagged, key=lambda f: f["changed_fraction"] / f["limit"])
        top = next(row for row in layers if row["family"] == worst["family"])
        message = (
            f"{worst['family']} weights: {worst['changed_fraction']:.1%} of outliers beyond the "
            f"bulk edge changed ({worst['before']} → {worst['after']}; limit "
            f"{worst['limit']:.1%}); most in {top['name']!r} ({top['before']} → {top['after']})"
        )
        return action, message, metrics, []


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
