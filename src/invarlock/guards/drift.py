"""The shared skeleton of the drift guards (``spectral``, ``rmt``, ``variance``).

Each compares a measurement of every in-scope weight before and after the edit. This base
owns what they share: the tier and scope options, ``prepare`` (scope → baseline) and
``validate`` (not prepared → each weight found again → measured → judged → result, with
the edit coverage and any broken weight). A subclass implements only its measurement:
:meth:`DriftGuard.baseline`, :meth:`DriftGuard.compare` and :meth:`DriftGuard.judge`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from invarlock.core.api import Guard
from invarlock.core.selection import check_patterns
from invarlock.guards._results import METRICS_CAP, check_policy, name_list, not_prepared, result
from invarlock.guards.scope import Scope, edit_coverage, edited_layers, resolve_scope
from invarlock.guards.tiers import tier_settings

#: A judged verdict: action, message, metrics and warnings.
Verdict = tuple[str, str, dict[str, Any], list[str]]


class DriftGuard(Guard):
    """Base of the guards that compare per-weight measurements before and after the edit.

    Args:
        tier: Band set (``conservative``, ``balanced``, ``aggressive``); set from
            ``guards.tier`` unless this block names its own.
        include: Weight patterns replacing the default scope (docs/guards.md, "Which
            weights").
        exclude: Weight patterns removed from the scope.
    """

    requires: ClassVar[tuple[str, ...]] = ("torch",)

    def __init__(
        self, tier: str, include: Sequence[str] | None, exclude: Sequence[str] | None
    ) -> None:
        #: The tier's settings (bands and the like) for this guard, as a fresh dict.
        self.settings = tier_settings(self.name, tier)
        self.tier = tier
        self.include = check_patterns(self.option("include"), include)
        self.exclude = check_patterns(self.option("exclude"), exclude)
        #: One record per in-scope weight (a ``weight`` and a ``shape`` each), or None.
        self._baselines: list[Any] | None = None

    def option(self, name: str) -> str:
        """The key path of option ``name`` (``guards.spectral.tol``), for error messages."""
        return f"guards.{self.name}.{name}"

    # ------------------------------------------------------------------ the skeleton

    def prepare(self, model: Any, adapter: Any, calib: Any, policy: Any) -> dict[str, Any]:
        """Resolve the scope and record the baseline of every weight in it."""
        check_policy(self.name, policy)
        self.reset()
        scope = resolve_scope(model, self.include, self.exclude)
        if scope.problems:
            return {"ready": False, "message": f"{self.name} guard: {'; '.join(scope.problems)}"}
        info = self.baseline(model, scope, calib)
        if info.get("ready") is False:
            return info
        warnings = [*scope.notes, *info.pop("warnings", [])]
        return {"ready": True, **info, "container": scope.container, "warnings": warnings}

    def validate(self, model: Any, adapter: Any, context: Mapping[str, Any]) -> dict[str, Any]:
        """Measure every weight again, judge the changes; a missing, reshaped or non-finite
        weight aborts."""
        if not self.prepared:
            raise not_prepared(self.name)
        edited = edited_layers(context)
        rows, broken = [], []
        for base in self._baselines or ():
            problem, row = self._compare_current(model, base)
            if problem is not None:
                broken.append(problem)
            else:
                rows.append(row)
        action, message, metrics, warnings = self.judge(model, rows)
        if self._baselines is not None:
            metrics.update(edit_coverage([b.weight for b in self._baselines], edited))
        if broken:
            metrics["broken"] = broken[:METRICS_CAP]
            more = f" (and {len(broken) - 1} more weights)" if len(broken) > 1 else ""
            return result("abort", f"{broken[0]}{more}", metrics)
        return result(action, message, metrics, warnings)

    def _compare_current(self, model: Any, base: Any) -> tuple[str | None, Any]:
        name = base.weight.name
        try:
            tensor = model.get_parameter(name)
        except AttributeError:
            return f"weight {name!r} no longer exists", None
        if tuple(tensor.shape) != base.shape:
            return f"weight {name!r} changed shape {base.shape} → {tuple(tensor.shape)}", None
        return self.compare(tensor, base)

    # ------------------------------------------------------------------ per guard

    @property
    def prepared(self) -> bool:
        """Whether :meth:`prepare` recorded a baseline."""
        return self._baselines is not None

    def reset(self) -> None:
        """Forget the baseline (``prepare`` starts here)."""
        self._baselines = None

    @abstractmethod
    def baseline(self, model: Any, scope: Scope, calib: Any) -> dict[str, Any]:
        """Measure ``scope``'s weights before the edit; set ``_baselines``; return the
        ``prepare`` info (its ``warnings`` join the scope's notes; ``ready: False`` stops)."""

    @abstractmethod
    def compare(self, tensor: Any, base: Any) -> tuple[str | None, Any]:
        """The measurement row of one weight after the edit, or why it cannot be compared."""

    @abstractmethod
    def judge(self, model: Any, rows: list[Any]) -> Verdict:
        """The verdict over every comparable weight's row."""


def skipped_note(skipped: list[str]) -> list[str]:
    """The ``prepare`` warning for weights left out of the baseline (zero or non-finite)."""
    return [f"skipped zero or non-finite weights: {name_list(skipped)}"] if skipped else []
