"""The invarlock hook contract: the one source of truth for hook names and signatures.

Importable as ``invarlock.hookspecs``. Hooks are grouped by the phase of the pipeline in
which they fire::

    discovery → configure → load → prepare → edit → validate → decide → report

The progress hooks (``invarlock_phase_start``, ``invarlock_phase_end``,
``invarlock_eval_progress``) fire throughout; the CLI's own run display implements them.

Implement a hook with ``@invarlock.hookimpl`` in a plugin module (entry-point group
``invarlock.hooks``), in a local ``invarlock_plugins.py`` file, or with ``-p module``.
Implementations may declare any subset of a spec's arguments, by the spec's names.

Guards and adapters written as classes (``invarlock.core.api.Guard`` /
``ModelAdapter``) need none of this: the host turns each registered class into a plugin
that implements the registration, load, prepare and validate hooks for its own name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invarlock._markers import hookspec

if TYPE_CHECKING:  # the contract: invarlock.core leaf modules (and the torch-free Evaluator)
    from invarlock.core.api import Guard, LoadedModel, ModelAdapter, Register
    from invarlock.core.context import RunContext
    from invarlock.core.edit import EditResult
    from invarlock.core.evaluator import Evaluator
    from invarlock.core.report import RunReport
    from invarlock.core.results import GuardOutcome

# --------------------------------------------------------------------------- discovery


@hookspec
def invarlock_register_guards(register: Register[Guard]) -> None:
    """Hand guard classes to the host.

    Fires once per plugin when the plugin manager collects plugins (listing and runs).
    Call ``register(guard_cls, name=None)`` for each :class:`~invarlock.core.api.Guard`
    subclass; ``name`` defaults to ``guard_cls.name``. The host owns naming: two plugins
    registering one name is an error naming both.

    :param register: callback ``register(guard_cls, name=None)``.
    :return: nothing; results are ignored.

    Local plugin files: may implement (this is how a project-specific guard is added).
    """


@hookspec
def invarlock_register_adapters(register: Register[ModelAdapter]) -> None:
    """Hand model-adapter classes to the host.

    Fires once per plugin when the plugin manager collects plugins. Call
    ``register(adapter_cls, name=None)`` for each :class:`~invarlock.core.api.ModelAdapter`
    subclass; ``name`` defaults to ``adapter_cls.name``. Name clashes are errors.

    :param register: callback ``register(adapter_cls, name=None)``.
    :return: nothing; results are ignored.

    Local plugin files: may implement.
    """


@hookspec
def invarlock_register_evaluators(register: Register[Evaluator]) -> None:
    """Hand evaluator classes (metrics for the paired evaluation) to the host.

    Fires once per plugin when the plugin manager collects plugins. Call
    ``register(evaluator_cls, name=None)`` for each
    :class:`~invarlock.core.evaluator.Evaluator` subclass; ``name`` (default
    ``evaluator_cls.name``) is what ``eval.metric`` selects. The built-in ``perplexity``
    evaluator arrives the same way. Name clashes are errors.

    :param register: callback ``register(evaluator_cls, name=None)``.
    :return: nothing; results are ignored.

    Local plugin files: may implement (this is how a project-specific metric is added).
    """


# --------------------------------------------------------------------------- configure


@hookspec
def invarlock_configure(config: Mapping[str, Any], run_dir: Path) -> None:
    """The run's configuration is resolved and validated; nothing is loaded yet.

    Fires once per run, after every plugin is registered and before the model is loaded.

    :param config: the resolved configuration (read-only mapping, ``--set`` applied).
    :param run_dir: the directory the run writes its report and events to.
    :return: nothing; all implementations are called. Raising aborts the run with a
        plugin error (exit code 3) before anything is touched.

    Local plugin files: may implement.
    """


@hookspec
def invarlock_run_start(run: RunContext) -> None:
    """The run begins: plugins can record ``run.run_id`` or open resources.

    :param run: the run's context (id, config, run directory, events log).
    :return: nothing; all implementations are called, even when one raises; then the run
        stops with a plugin error (exit 3) naming each failing plugin.

    Local plugin files: may implement.
    """


# --------------------------------------------------------------------------- progress


@hookspec
def invarlock_phase_start(run: RunContext, phase: str, detail: str) -> None:
    """A phase of the run begins (``load``, ``fingerprint``, ``data``, ``snapshot``,
    ``prepare``, ``baseline``, ``edit``, ``validate``, ``evaluate``, ``restore``, ``export``).

    Fires once per phase the run enters, in pipeline order. The terminal display of
    ``invarlock run`` implements it (as pytest's terminal reporter implements pytest's hooks).

    :param run: the run's context.
    :param phase: the phase's name, as ``report.json`` ``phases[].name`` records it.
    :param detail: one line for a human, e.g. ``"gpt2 (hf_causal)"`` or ``"4 guard(s)"``.
    :return: nothing; all implementations are called, even when one raises; then the run
        stops with a plugin error (exit 3). Once the model is loaded, an implementation that
        changes a tensor stops the run (exit 3).

    Local plugin files: may implement.
    """


@hookspec
def invarlock_phase_end(run: RunContext, phase: str, seconds: float) -> None:
    """A phase of the run ended, successfully or not.

    Fires once for every :func:`invarlock_phase_start`, also when the phase raised.

    :param run: the run's context.
    :param phase: the phase's name.
    :param seconds: its wall time (``report.json`` ``timings_s[phase]``).
    :return: nothing; all implementations are called, even when one raises; then the run
        stops with a plugin error (exit 3), unless the phase itself failed (the failure is
        then logged in the events log and the phase's own error ends the run).

    Local plugin files: may implement.
    """


@hookspec
def invarlock_eval_progress(
    run: RunContext, phase: str, done: int, total: int, tokens: int
) -> None:
    """A batch of evaluation windows has been scored.

    Fires after each batch of the ``baseline`` and ``evaluate`` phases (runs with a
    dataset only).

    :param run: the run's context.
    :param phase: ``"baseline"`` or ``"evaluate"``.
    :param done: windows scored so far in this phase.
    :param total: windows planned for this phase.
    :param tokens: tokens scored so far in this phase.
    :return: nothing; all implementations are called, even when one raises; then the run
        stops with a plugin error (exit 3). An implementation that changes a tensor stops
        the run (exit 3).

    Local plugin files: may implement.
    """


# --------------------------------------------------------------------------- load


@hookspec(firstresult=True)
def invarlock_load_model(
    adapter_name: str, model_id: str, device: str, options: Mapping[str, Any]
) -> LoadedModel | None:
    """Load the model named by ``model.id`` with the adapter named by ``model.adapter``.

    Fires once per run. Each adapter class is bound to this hook for its own name and
    returns ``None`` for every other name; ``"auto"`` asks the registered adapters'
    ``can_load``.

    :param adapter_name: the configured adapter (``model.adapter``).
    :param model_id: a local directory, a ``.gguf`` file or a hub id (``model.id``).
    :param device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    :param options: the remaining ``model`` keys (``dtype``, ``device_map``, ...).
    :return: a :class:`~invarlock.core.api.LoadedModel`, or ``None`` when this plugin does
        not serve ``adapter_name``. First non-``None`` result wins.

    Local plugin files: may implement.
    """


@hookspec
def invarlock_model_loaded(
    run: RunContext, loaded: LoadedModel, description: Mapping[str, Any]
) -> None:
    """The model is loaded and described; no snapshot has been taken yet.

    :param run: the run's context.
    :param loaded: the model, its adapter and where it came from.
    :param description: the adapter's ``describe(model)``.
    :return: nothing; all implementations are called, even when one raises; then the run
        stops with a plugin error (exit 3). The model is fingerprinted before this hook:
        an implementation that changes a tensor stops the run (exit 3).

    Local plugin files: may implement.
    """


# --------------------------------------------------------------------------- prepare


@hookspec(firstresult=True)
def invarlock_guard_prepare(
    guard_name: str, model: Any, adapter: ModelAdapter, calib: Any, policy: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """Let guard ``guard_name`` capture its baseline before the edit.

    Fires once per guard in ``guards.order``, in that order, after the snapshot is taken.
    Each guard class is bound to this hook for its own name. One guard instance, built
    from the guard's YAML block, serves both ``prepare`` and ``validate``, so a guard keeps
    what it needs on ``self``. The whole result is written into ``report.json`` (the
    prepare entry's ``result``) and handed back to ``validate`` as ``context["prepare"]``.

    :param guard_name: the guard being prepared.
    :param model: the unedited model.
    :param adapter: the adapter that loaded it.
    :param calib: calibration batches, or ``None`` when the run has no dataset: a list of
        ``torch.LongTensor`` input-id batches ``[batch, seq_len]`` on the model's device
        (``dataset.calib_windows`` windows, disjoint from the evaluation windows).
    :param policy: the guard's YAML block (read-only).
    :return: a mapping (``{"ready": False, "message": ...}`` stops the run before the
        edit), or ``None`` when this plugin does not own ``guard_name``. First non-``None``
        result wins; wrappers (``wrapper=True``) see every guard's call.

    Local plugin files: may implement.
    """


# --------------------------------------------------------------------------- edit


@hookspec
def invarlock_edit_applied(run: RunContext, result: EditResult) -> None:
    """The built-in edit (``quant_rtn`` or ``noop``) has changed the model in place.

    :param run: the run's context.
    :param result: the edit's name, parameters and per-layer statistics.
    :return: nothing; all implementations are called, even when one raises; then the run
        stops with a plugin error (exit 3). Plugins observe edits; they do not add edit
        algorithms, and a change to any tensor stops the run (exit 3).

    Local plugin files: may implement.
    """


# --------------------------------------------------------------------------- validate


@hookspec(firstresult=True)
def invarlock_guard_validate(
    guard_name: str, model: Any, adapter: ModelAdapter, context: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """Let guard ``guard_name`` judge the edited model.

    Fires once per guard in ``guards.order``, in that order, after the edit.

    :param guard_name: the guard being validated.
    :param model: the edited model.
    :param adapter: the adapter that loaded it.
    :param context: a :class:`~invarlock.core.guard_context.ValidateContext`:
        ``{"prepare": <this guard's prepare result>, "edit": <EditSummary>,
        "policy": <the guard's YAML block>, "model": <describe(model)>, "run_id": str}``;
        the :class:`~invarlock.core.edit.EditSummary` is read-only (``.name``, ``.params``,
        ``.layers``, ``.modules``, ``.parameters``, ``.to_dict()``).
    :return: a :class:`~invarlock.core.api.GuardResult` mapping (``passed``, ``action``,
        ``message`` required), or ``None`` when this plugin does not own ``guard_name``.
        First non-``None`` result wins. A malformed result fails that guard.

    Local plugin files: may implement.
    """


# --------------------------------------------------------------------------- decide


@hookspec
def invarlock_guard_result(run: RunContext, outcome: GuardOutcome) -> None:
    """A guard's prepare or validate result has been checked and recorded.

    :param run: the run's context.
    :param outcome: the checked :class:`~invarlock.core.results.GuardOutcome` (``guard``,
        ``phase``, ``passed``, ``action``, ``message``, ``metrics``, ``warnings``, ``error``,
        ``duration_s``).
    :return: nothing; all implementations are called, even when one raises; then the run
        stops with a plugin error (exit 3).

    Local plugin files: may implement.
    """


# --------------------------------------------------------------------------- report


@hookspec
def invarlock_report(run: RunContext, report: RunReport, run_dir: Path) -> None:
    """``report.json`` has been written; write further artefacts next to it.

    Fires once per run that reached a decision (kept, kept with warnings, rolled back).

    :param run: the run's context.
    :param report: the final report (``report.to_dict()`` is what ``report.json`` holds).
    :param run_dir: the run directory.
    :return: nothing; all implementations are called. A failing implementation is logged
        in the events log and ``report.json`` (rewritten after the hooks); it cannot change
        the decision.

    Local plugin files: may implement.
    """


@hookspec
def invarlock_run_finish(run: RunContext, status: str, exit_code: int) -> None:
    """The run is over, whatever happened: release resources.

    Fires exactly once per run that fired :func:`invarlock_run_start`, also after errors
    and interrupts (the model is already restored when the edit was rolled back).

    :param run: the run's context.
    :param status: ``"kept"``, ``"warned"``, ``"rolled_back"``, ``"error"`` or ``"interrupted"``.
    :param exit_code: the exit code the CLI will return.
    :return: nothing; all implementations are called; exceptions are logged, not raised.

    Local plugin files: may implement.
    """
