"""The pipeline: load → snapshot → guards prepare → edit → guards validate → keep, warn or
roll back → report.

Every plugin call goes through the plugin manager's typed methods (one per hook); the
terminal display is a plugin implementing the progress hooks. Whatever happens after the edit
(a guard aborts, a plugin raises or calls ``sys.exit``, Ctrl-C or SIGTERM), the touched
tensors are restored from the snapshot. The whole model is fingerprinted at load and
checked after every plugin call that could change it (``runner/integrity.py``); after a
restore the whole model is compared with its load fingerprint, and only then is it
reported as verified.
"""

from __future__ import annotations

import os
import platform
import secrets
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from invarlock import __version__
from invarlock.core.atomic import write_json_atomic
from invarlock.core.context import RunContext
from invarlock.core.edit import EditResult, EditSummary
from invarlock.core.errors import (
    EXIT_MODEL,
    EXIT_PLUGIN,
    InvarlockError,
    ModelLoadError,
    PluginError,
    RestoreError,
)
from invarlock.core.guard_context import validate_context
from invarlock.core.options import OptionError
from invarlock.core.report import RunReport
from invarlock.core.results import (
    PREPARE,
    VALIDATE,
    GuardOutcome,
    MalformedGuardResult,
    check_prepare_result,
    check_validate_result,
    failed_outcome,
)
from invarlock.plugins.manager import PluginManager
from invarlock.plugins.notify import HookFailure, Notified
from invarlock.runner.config import RunConfig
from invarlock.runner.decision import KEPT, ROLLED_BACK, WARNED, decide
from invarlock.runner.events import EventLog
from invarlock.runner.plan import GuardPlan, RunPlan, build_plan
from invarlock.runner.signals import interrupt_exit_code, interrupts_as_exceptions

ERROR, INTERRUPTED = "error", "interrupted"


@dataclass
class _State:
    """Mutable facts of one run, shared by the pipeline steps and the clean-up."""

    plan: RunPlan
    report: RunReport
    run: RunContext | None = None
    model: Any = None
    adapter: Any = None
    snapshot: Any = None
    integrity: Any = None  # IntegrityMonitor, from load on
    loaded: Any = None  # the adapter's LoadedModel (its info names a source GGUF)
    edited: bool = False
    edit: EditResult | None = None  # what the edit returned (its codes feed the export)
    restore_tried: bool = False
    prepared: dict[str, GuardOutcome] = field(default_factory=dict)
    outcomes: list[GuardOutcome] = field(default_factory=list)  # every guard call, in order
    evaluation: Any = None  # PairedEvaluation when the run has a dataset
    evaluated: Any = None  # its EvaluationResult once the edited model is scored


class Runner:
    """Runs one configuration; :meth:`execute` returns the report (also on failure)."""

    def __init__(self, config: RunConfig, manager: PluginManager) -> None:
        self.config = config
        self.manager = manager
        self._events: EventLog | None = None
        self._state: _State | None = None
        self._guards: dict[str, Any] = {}  # each guard in the order, built once by preflight
        self._clock_start = time.perf_counter()

    def plan(self) -> RunPlan:
        return build_plan(self.config, self.manager)

    def preflight(self) -> RunPlan:
        """Every check that needs no model (what ``--dry-run`` runs): the plan, each guard
        built from its options, and the run directory's place; nothing is created."""
        plan = self.plan()
        self.manager.check_model(plan.adapter_resolved, plan.model_id, plan.model_options)
        self._guards = {g.name: self._configure_guard(g) for g in plan.guards}
        self._run_dir_problem(self._run_dir_path("<run-id>"))
        return plan

    # ------------------------------------------------------------------ the run

    def execute(self) -> RunReport:
        """Plan (errors raise before anything is created), then run and report.

        Errors after planning do not raise: they are recorded in the report, whose
        ``exit_code`` the CLI returns.
        """
        plan = self.preflight()
        self._clock_start = time.perf_counter()
        run_id = datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
        run_dir = self._make_run_dir(run_id)
        events = EventLog(run_dir / "events.jsonl")
        self._events = events
        stop_listening = self.manager.monitor.add_listener(events.hook_called)
        report = RunReport(
            run_id=run_id,
            run_dir=str(run_dir),
            started_at=_now(),
            versions=_versions(),
            config=self.config.raw,
            plan=plan.to_dict(),
            skipped_guards=plan.skipped,
            plugins=[p.to_dict() for p in self.manager.plugins if p.obj is not None],
        )
        if not plan.guards:
            report.warnings.append("guards.order is empty (guards.allow_empty): nothing checked")
        state = self._state = _State(plan=plan, report=report)
        state.run = RunContext(
            run_id=run_id,
            config=self.config,
            run_dir=run_dir,
            plugins=self.manager,
            events=events,
            started_at=datetime.now(timezone.utc),
        )
        events.emit("run_start", run_id=run_id, plan=plan.to_dict())
        started_hooks = False
        restore_signal_handlers = interrupts_as_exceptions()
        try:
            self._after_hook(state, self.manager.configure(self.config.raw, run_dir))
            started_hooks = True  # run_start reaches every plugin: each is owed a finish
            self._after_hook(state, self.manager.run_start(state.run))
            self._pipeline(state)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (runner/signals.py)
            code = interrupt_exit_code(exc)
            cause = "terminated (SIGTERM)" if code != 130 else "interrupted by the user"
            self._fail(state, INTERRUPTED, code, cause, None)
        except InvarlockError as exc:
            self._fail(state, ERROR, exc.exit_code, str(exc), traceback.format_exc())
        except SystemExit as exc:  # only plugin code calls sys.exit() inside a run
            message = f"plugin code called sys.exit({exc.code!r}) during the run"
            self._fail(state, ERROR, EXIT_PLUGIN, message, traceback.format_exc())
        except Exception as exc:
            message = f"unexpected {type(exc).__name__}: {exc}"
            self._fail(state, ERROR, EXIT_MODEL, message, traceback.format_exc())
        finally:
            self._finish(state, started_hooks, events, stop_listening)
            restore_signal_handlers()
        return report

    def _pipeline(self, state: _State) -> None:
        plan, report, run = state.plan, state.report, state.run
        assert run is not None
        guards = self._guards  # built by preflight, before the slow load
        evaluator = self._evaluator()  # an unknown eval.metric fails before the load too

        with self._phase(report, "load", f"{plan.model_id} ({plan.adapter_resolved})"):
            loaded = state.loaded = self._load(plan)
            state.model, state.adapter = loaded.model, loaded.adapter
            description = self.manager.describe_model(loaded)
            report.model = {"id": plan.model_id, "adapter": loaded.adapter_name, **description}
        with self._phase(report, "fingerprint", "every parameter and buffer"):
            from invarlock.runner.integrity import IntegrityMonitor

            state.integrity = IntegrityMonitor.start(state.model)
        self._after_hook(state, self.manager.model_loaded(run, loaded, description))
        if self.config.dataset is not None:
            with self._phase(report, "data", self.config.dataset.source):
                state.evaluation = self._prepare_evaluation(loaded, evaluator)

        with self._phase(report, "snapshot", "tensors the edit will write"):
            from invarlock.runner.snapshot import Snapshot

            targets = plan.edit.targets(state.model, plan.edit_config)
            extras = state.integrity.extra_snapshot_names(targets, state.model)
            state.snapshot = Snapshot.take(
                state.model,
                [*targets, *extras],
                mode=self.config.output.snapshot,
                directory=run.run_dir,
            )
            report.snapshot = {
                "mode": state.snapshot.mode,
                "tensors": len(targets),
                "bytes": state.snapshot.nbytes,
                "digest": state.snapshot.digest,
                "restored": False,
            }

        with self._phase(report, "prepare", f"{len(guards)} guard(s)"):
            for g in plan.guards:
                outcome = self._guard_call(state, g, PREPARE, description)
                state.prepared[g.name] = outcome
                if outcome.aborts and self.config.guards.fail_fast:
                    break
        if decide(state.outcomes, edited=False).rolls_back:
            self._decide(state)  # nothing edited: the model was never changed
            return
        if evaluator is not None:
            with self._phase(report, "baseline", f"{evaluator.name} on the unedited model"):
                state.evaluation.run_baseline(state.model, state.integrity.expected)
            state.integrity.check(state.model, "baseline", plugin=evaluator.name)
            if state.evaluation.cache_warning:
                report.warnings.append(state.evaluation.cache_warning)

        with self._phase(report, "edit", plan.edit_name):
            state.edited = True  # set first: a failure inside apply() leaves a partial edit
            result = state.edit = plan.edit.apply(state.model, plan.edit_config)
            report.edit = result.to_dict()
            state.integrity.accept_edit(state.model, targets, plan.edit_name)
        self._after_hook(state, self.manager.edit_applied(run, result))

        with self._phase(report, "validate", f"{len(guards)} guard(s)"):
            summary = result.summary()
            for g in plan.guards:
                outcome = self._guard_call(state, g, VALIDATE, description, edit=summary)
                if outcome.aborts and self.config.guards.fail_fast:
                    break
        if evaluator is not None and not decide(state.outcomes).rolls_back:
            with self._phase(report, "evaluate", f"{evaluator.name} on the edited model"):
                state.evaluated = state.evaluation.run_edited(state.model)
                report.evaluation = state.evaluated.to_dict()
            state.integrity.check(state.model, "evaluate", plugin=evaluator.name)
        self._decide(state)

    # ------------------------------------------------------------------ steps

    def _load(self, plan: RunPlan) -> Any:
        try:
            return self.manager.load_model(
                plan.adapter_resolved, plan.model_id, plan.device, plan.model_options
            )
        except InvarlockError:
            raise
        except (OSError, ValueError, RuntimeError, TypeError, ImportError) as exc:
            raise ModelLoadError(
                f"cannot load model {plan.model_id!r} with adapter {plan.adapter_resolved!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _evaluator(self) -> Any:
        """The ``eval.metric`` evaluator, or ``None`` when the run evaluates nothing."""
        settings = self.config.eval
        if self.config.dataset is None or settings is None or not settings.enabled:
            return None
        return self.manager.evaluator(settings.metric)

    def _prepare_evaluation(self, loaded: Any, evaluator: Any) -> Any:
        """Tokenizer, windows and calibration batches (see invarlock.evaluation.paired)."""
        from invarlock.evaluation.paired import PairedEvaluation, load_tokenizer

        assert self.config.dataset is not None and self.config.eval is not None
        tokenizer = load_tokenizer(loaded, dict(self.config.model.options))
        return PairedEvaluation.prepare(
            self.config.dataset,
            self.config.eval,
            evaluator,
            loaded.model,
            tokenizer,
            progress=self._eval_progress,
        )

    def _configure_guard(self, g: GuardPlan) -> Any:
        try:
            return self.manager.configure_guard(g.name, g.options)
        except OptionError as exc:  # an option rule (core.options) names its key path
            raise self.config.locate(exc) from exc
        except (TypeError, ValueError) as exc:
            raise self.config.error(
                f"guards.{g.name}", f"guard {g.name!r} rejected its options: {exc}"
            ) from exc

    def _guard_call(
        self,
        state: _State,
        g: GuardPlan,
        phase: str,
        description: dict[str, Any],
        edit: EditSummary | None = None,
    ) -> GuardOutcome:
        started = time.perf_counter()
        try:
            if phase == PREPARE:
                calib = state.evaluation.calib if state.evaluation is not None else None
                raw = self.manager.guard_prepare(
                    g.name, state.model, state.adapter, calib, g.options
                )
                outcome = check_prepare_result(g.name, raw)
            else:
                prepared = state.prepared.get(g.name)
                context = validate_context(
                    prepare=prepared.raw if prepared else {},
                    edit=edit,
                    policy=g.options,
                    model=description,
                    run_id=state.report.run_id,
                )
                raw = self.manager.guard_validate(g.name, state.model, state.adapter, context)
                outcome = check_validate_result(g.name, raw)
            outcome.to_dict()  # a result that cannot be reported (e.g. recursive) is a failure
        except MalformedGuardResult as exc:
            outcome = failed_outcome(g.name, phase, str(exc), str(exc))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: a guard cannot end the run
            raised = "called sys.exit" if isinstance(exc, SystemExit) else "raised"
            message = f"guard {g.name!r} {phase}() {raised} {type(exc).__name__}: {exc}"
            outcome = failed_outcome(g.name, phase, message, traceback.format_exc())
        outcome.duration_s = time.perf_counter() - started
        state.outcomes.append(outcome)
        state.report.guards.append({**outcome.to_dict(), "origin": g.origin, "options": g.options})
        state.integrity.check(state.model, phase, plugin=g.plugin, guard=g.name)
        self._after_hook(state, self.manager.guard_result(state.run, outcome))
        return outcome

    def _decide(self, state: _State) -> None:
        gate = state.evaluated.gate_failure() if state.evaluated is not None else None
        decision = decide(state.outcomes, gate, edited=state.edited)
        if decision.rolls_back and state.edited:
            self._restore(state)
        report = state.report
        report.status, report.exit_code = decision.status, decision.exit_code
        report.decision = decision.to_dict()
        if not decision.rolls_back and self.config.output.export:
            self._export(state)

    def _restore(self, state: _State) -> None:
        """Restore from the snapshot, then check the whole model against its load digest."""
        state.restore_tried = True
        restored = False
        with self._phase(state.report, "restore", "snapshot → model"):
            try:
                state.snapshot.restore(state.model)  # raises RestoreError unless bit-exact
                restored = True
            finally:
                still = state.integrity.after_restore(state.model, restored)
                if state.report.snapshot is not None:
                    state.report.snapshot.update(restored=restored, verified=not still)
        state.edited = False
        if still:
            shown = ", ".join(still[:5]) + (f" and {len(still) - 5} more" if len(still) > 5 else "")
            raise RestoreError(
                f"model not fully restored: {len(still)} tensor(s) differ from load and had "
                f"no copy in the snapshot: {shown}"
            )

    def _export(self, state: _State) -> None:
        from invarlock.core.edit import export_form
        from invarlock.exporters import Source
        from invarlock.exporters.run import export_all

        assert state.run is not None
        plan, formats = state.plan, self.config.output.formats
        codes = export_form(plan.edit, plan.edit_config, state.edit)  # None: the edit has none
        source = Source.of(plan.model_id, getattr(state.loaded, "info", None))
        with self._phase(state.report, "export", ", ".join(formats)):
            entries = export_all(formats, state.model, codes, state.run.run_dir, source)
        state.report.exports = entries
        native = [entry["path"] for entry in entries if entry["format"] == "native"]
        if native:
            state.report.export = {"path": native[0]}

    def _fail(
        self, state: _State, status: str, exit_code: int, message: str, trace: str | None
    ) -> None:
        report = state.report
        report.status, report.exit_code = status, exit_code
        report.error = {"message": message, "traceback": trace}
        restored = False
        integrity = state.integrity
        dirty = state.edited or (integrity is not None and integrity.tampered)
        if dirty and state.snapshot is not None and not state.restore_tried:
            try:
                self._restore(state)
                restored = True
            except BaseException as exc:
                report.error["restore_error"] = f"{type(exc).__name__}: {exc}"
                report.exit_code = EXIT_MODEL
        elif dirty and integrity is not None and integrity.restored is None:
            still = integrity.after_restore(state.model, False)  # nothing to restore from
            report.error["restore_error"] = f"no snapshot to restore {', '.join(still)}"
            report.exit_code = EXIT_MODEL
        report.decision = {
            "status": status,
            "reasons": [message],
            "edit_applied": state.edited or restored,
            "model_restored": restored,
        }

    def _finish(
        self, state: _State, started_hooks: bool, events: EventLog, stop_listening: Any
    ) -> None:
        report, run = state.report, state.run
        assert run is not None
        report.finished_at = _now()
        if report.status == "running":  # unreachable by design; never leave it claimed
            self._fail(state, ERROR, EXIT_MODEL, "the run ended without a decision", None)
        if state.integrity is not None:
            report.integrity = state.integrity.to_dict()
        path = run.run_dir / "report.json"
        try:
            if state.snapshot is not None:
                state.snapshot.close()  # a disk snapshot never outlives its run
            write_json_atomic(path, report.to_dict())
            events.emit("report_written", path=str(path))
            written_warnings = len(report.warnings)
            failures: list[HookFailure] = []
            if report.status in (KEPT, WARNED, ROLLED_BACK):
                failures += self._after_decision(
                    "invarlock_report", lambda: self.manager.report(run, report, run.run_dir)
                )
            if started_hooks:
                failures += self._after_decision(
                    "invarlock_run_finish",
                    lambda: self.manager.run_finish(run, report.status, report.exit_code),
                )
            if failures:  # the report says so: rewritten whole, after the hooks
                self._log_failures(events, failures)
                report.warnings += [f"{f} (after the decision; ignored)" for f in failures]
            if self.config.output.html:  # never raises: a failure becomes a report warning
                from invarlock.reports.page import write_run_page

                write_run_page(report, run.run_dir)
            if len(report.warnings) != written_warnings:
                write_json_atomic(path, report.to_dict())
        finally:
            events.emit("run_finish", status=report.status, exit_code=report.exit_code)
            stop_listening()
            events.close()
            if state.snapshot is not None:
                state.snapshot.close()

    # ------------------------------------------------------------------ helpers

    def _run_dir_path(self, run_id: str) -> Path:
        output = self.config.output
        return (output.dir / (output.run_name or run_id)).absolute()

    def _run_dir_problem(self, run_dir: Path) -> None:
        """Raise if ``run_dir`` could not be created (or, when named, is already used)."""
        if self.config.output.run_name and run_dir.exists() and any(run_dir.iterdir()):
            raise self.config.error(
                "output.run_name", f"run directory {run_dir} already exists and is not empty"
            )
        existing = next(p for p in (run_dir, *run_dir.parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            what = "is not a directory" if not existing.is_dir() else "is not writable"
            raise self.config.error(
                "output.dir", f"cannot create run directory {run_dir}: {existing} {what}"
            )

    def _make_run_dir(self, run_id: str) -> Path:
        run_dir = self._run_dir_path(run_id)
        self._run_dir_problem(run_dir)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self.config.error(
                "output.dir", f"cannot create run directory {run_dir}: {exc.strerror or exc}"
            ) from None
        return run_dir

    def _after_hook(self, state: _State, notified: Notified) -> None:
        """After a notification hook (every implementation has run): any failure stops the
        run with a plugin error (exit 3) naming each failing plugin, or with the
        InvarlockError a plugin raised on purpose; then, when a plugin other than the
        host's own implements the hook, the whole model is checked (runner/integrity.py)."""
        if notified.failures:
            assert self._events is not None
            self._log_failures(self._events, notified.failures)
            for failure in notified.failures:  # a plugin may reject the config on purpose (exit 2)
                if isinstance(failure.exc, InvarlockError):
                    raise failure.exc
            raise PluginError("; ".join(str(f) for f in notified.failures))
        if notified.implementers and state.integrity is not None:
            plugins = ", ".join(notified.implementers)
            state.integrity.check(state.model, notified.hook, plugin=plugins)

    @staticmethod
    def _after_decision(hook_name: str, notify: Callable[[], Notified]) -> list[HookFailure]:
        """A report/finish hook: failures and an interrupt are recorded, never raised (the
        decision is made; an interrupt here skips the remaining implementations)."""
        try:
            return notify().failures
        except KeyboardInterrupt as exc:
            return [HookFailure(hook_name, "(interrupted)", type(exc).__name__, "")]

    @staticmethod
    def _log_failures(events: EventLog, failures: list[HookFailure]) -> None:
        for f in failures:
            events.emit("hook_error", hook=f.hook, plugin=f.plugin, error=f.error)

    def _eval_progress(self, phase: str, done: int, total: int, tokens: int) -> None:
        state = self._state
        assert state is not None and state.run is not None
        self._after_hook(state, self.manager.eval_progress(state.run, phase, done, total, tokens))

    @contextmanager
    def _phase(self, report: RunReport, phase: str, detail: str) -> Iterator[None]:
        """Time a phase into the report; ``invarlock_phase_start``/``_end`` around it (a
        failing ``phase_end`` of a phase that raised is logged, not raised over its error)."""
        state = self._state
        assert state is not None and state.run is not None
        self._after_hook(state, self.manager.phase_start(state.run, phase, detail))
        started = time.perf_counter()
        completed = False
        try:
            yield
            completed = True
        finally:
            seconds = time.perf_counter() - started
            report.timings_s[phase] = round(seconds, 6)
            start = round(started - self._clock_start, 6)
            report.phases.append({"name": phase, "start_s": start, "duration_s": round(seconds, 6)})
            ended = self.manager.phase_end(state.run, phase, seconds)
            if completed:
                self._after_hook(state, ended)
            elif ended.failures and self._events is not None:
                self._log_failures(self._events, ended.failures)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, str]:
    versions = {"invarlock": __version__, "python": platform.python_version()}
    for module in ("torch", "transformers", "pluggy"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:  # pragma: no cover - reported as missing
            versions[module] = "missing"
    return versions
