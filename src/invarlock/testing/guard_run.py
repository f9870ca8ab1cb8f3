"""``run_guard``: one guard through prepare → edit → validate, the way a run calls it.

The guard is configured, prepared and validated through the plugin manager's hooks (so
wrappers and hook-style guards take part), its results pass the host's own checks, the
edit is the real built-in edit, and ``validate`` gets the same ``context`` a run builds
(:func:`invarlock.core.guard_context.validate_context`, with the edit's read-only
:class:`~invarlock.core.edit.EditSummary` as ``context["edit"]``). What differs from a run: no
snapshot, no rollback, no lifecycle hooks, no report file (use the project factory for those).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invarlock.core.edit import EditResult
    from invarlock.core.guard_context import ValidateContext
    from invarlock.core.results import GuardOutcome
    from invarlock.testing.isolated import IsolatedPlugins


@dataclass
class GuardRun:
    """What happened to one guard: both checked outcomes, the edit and the context."""

    name: str
    guard: Any  # the one instance that served prepare and validate
    model: Any
    adapter: Any
    prepare: GuardOutcome
    edit: EditResult | None  # None when prepare said ready=False
    context: ValidateContext | None
    validate: GuardOutcome | None

    @property
    def action(self) -> str:
        """The action the run would act on: validate's, or prepare's when it stopped."""
        return (self.validate or self.prepare).action

    @property
    def passed(self) -> bool:
        return (self.validate or self.prepare).passed

    def __repr__(self) -> str:
        outcome = self.validate or self.prepare
        return f"<GuardRun {self.name} {outcome.phase}: {outcome.action} — {outcome.message}>"


def run_guard(
    guard: type | str,
    *,
    plugins: IsolatedPlugins,
    model: Any,
    adapter: Any = None,
    options: Mapping[str, Any] | None = None,
    edit: str = "quant_rtn",
    edit_params: Mapping[str, Any] | None = None,
    after_edit: Callable[[Any], None] | None = None,
    calib: Any = None,
    run_id: str = "test-run",
) -> GuardRun:
    """Run ``guard`` (a Guard class, registered for this test, or a guard's name).

    ``options`` is the guard's YAML block; ``edit``/``edit_params`` the built-in edit and its
    parameters; ``after_edit(model)`` runs after the edit to simulate damage (e.g. put a NaN
    in a weight). A guard that raises, or returns a malformed result, raises here with the
    host's message. Returns a :class:`GuardRun`.
    """
    from invarlock.core.guard_context import validate_context
    from invarlock.core.results import check_prepare_result, check_validate_result
    from invarlock.edits import get_edit

    name = guard if isinstance(guard, str) else plugins.register_guard(guard)
    manager = plugins.manager
    policy = dict(options or {})
    instance = manager.configure_guard(name, policy)
    if adapter is None:
        from invarlock.adapters import HF_Causal_Adapter

        adapter = HF_Causal_Adapter()
    description = dict(adapter.describe(model))

    started = time.perf_counter()
    raw = manager.guard_prepare(name, model, adapter, calib, policy)
    prepared = check_prepare_result(name, raw)
    prepared.duration_s = time.perf_counter() - started
    result = GuardRun(name, instance, model, adapter, prepared, None, None, None)
    if prepared.aborts:
        return result

    editor = get_edit(edit)
    result.edit = editor.apply(model, editor.parse(edit_params))
    if after_edit is not None:
        after_edit(model)
    result.context = validate_context(
        prepare=prepared.raw,
        edit=result.edit.summary(),
        policy=policy,
        model=description,
        run_id=run_id,
    )
    started = time.perf_counter()
    raw = manager.guard_validate(name, model, adapter, result.context)
    result.validate = check_validate_result(name, raw)
    result.validate.duration_s = time.perf_counter() - started
    return result
