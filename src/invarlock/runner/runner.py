"""The pipeline: load → snapshot → guards prepare → edit → guards validate → keep, warn or
roll back → report.

Every plugin call goes through the plugin manager. Whatever happens after the edit
(a guard aborts, a plugin raises, the user presses Ctrl-C), the touched tensors are
restored from the snapshot and the restore is verified by hash before the run ends.
"""

from __future__ import annotations

import platform
import secrets
import shutil
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from invarlock import __version__
from invarlock.core.errors import (
    EXIT_INTERRUPTED,
    EXIT_KEPT,
    EXIT_MODEL,
    EXIT_ROLLED_BACK,
    InvarlockError,
    ModelLoadError,
    PluginError,
)
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
from invarlock.runner.config import RunConfig
from invarlock.runner.context import RunContext
from invarlock.runner.events import EventLog
from invarlock.runner.plan import GuardPlan, RunPlan, build_plan
from invarlock.runner.report import RunReport, write_json_atomic

KEPT, WARNED, ROLLED_BACK, ERROR, INTERRUPTED = (
    "kept",
    "warned",
    "rolled_back",
    "error",
    "interrupted",
)


class RunObserver:
    """Progress callbacks for a front end; the default does nothing."""

    def phase_start(self, phase: str, detail: str) -> None: ...

    def phase_end(self, phase: str, seconds: float) -> None: ...

    def guard_outcome(self, outcome: GuardOutcome) -> None: ...

    def progress(self, phase: str, done: int, total: int, tokens: int) -> None:
        """``done`` of ``total`` windows (``tokens`` tokens) of an evaluation phase are scored."""


@dataclass
class _State:
    """Mutable facts of one run, shared by the pipeline steps and the clean-up."""

    plan: RunPlan
    report: RunReport
    run: RunContext | None = None
    model: Any = None
    adapter: Any = None
    snapshot: Any = None
    edited: bool = False
    prepared: dict[str, GuardOutcome] = field(default_factory=dict)
    evaluation: Any = None  # PairedEvaluation when the run has a dataset
    evaluated: Any = None  # its EvaluationResult once the edited model is scored


class Runner:
    """Runs one configuration; :meth:`execute` returns the report (also on failure)."""

    def __init__(
        self, config: RunConfig, manager: PluginManager, observer: RunObserver | None = None
    ) -> None:
        self.config = config
        self.manager = manager
        self.observer = observer or RunObserver()

    def plan(self) -> RunPlan:
        return build_plan(self.config, self.manager)

    # ------------------------------------------------------------------ the run

    def execute(self) -> RunReport:
        """Plan (errors raise before anything is created), then run and report.

        Errors after planning do not raise: they are recorded in the report, whose
        ``exit_code`` the CLI returns.
        """
        plan = self.plan()
        run_id = datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
        run_dir = self._make_run_dir(run_id)
        events = EventLog(run_dir / "events.jsonl")
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
        state = _State(plan=plan, report=report)
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
        try:
            self._notify("invarlock_configure", config=self.config.raw, run_dir=run_dir)
            self._notify("invarlock_run_start", run=state.run)
            started_hooks = True
            self._pipeline(state)
        except KeyboardInterrupt:
            self._fail(state, INTERRUPTED, EXIT_INTERRUPTED, "interrupted by the user", None)
        except InvarlockError as exc:
            self._fail(state, ERROR, exc.exit_code, str(exc), traceback.format_exc())
        except Exception as exc:
            message = f"unexpected {type(exc).__name__}: {exc}"
            self._fail(state, ERROR, EXIT_MODEL, message, traceback.format_exc())
        finally:
            self._finish(state, started_hooks, events, stop_listening)
        return report

    def _pipeline(self, state: _State) -> None:
        plan, report, run = state.plan, state.report, state.run
        assert run is not None
        guards = {g.name: self._configure_guard(g) for g in plan.guards}  # before the slow load
        evaluator = self._evaluator()  # an unknown eval.metric fails before the load too

        with self._phase(report, "load", f"{plan.model_id} ({plan.adapter_resolved})"):
            loaded = self._load(plan)
            state.model, state.adapter = loaded.model, loaded.adapter
            description = dict(loaded.adapter.describe(loaded.model))
            report.model = {"id": plan.model_id, "adapter": loaded.adapter_name, **description}
        self._notify("invarlock_model_loaded", run=run, loaded=loaded, description=description)
        if self.config.dataset is not None:
            with self._phase(report, "data", self.config.dataset.source):
                state.evaluation = self._prepare_evaluation(loaded, evaluator)

        with self._phase(report, "snapshot", "tensors the edit will write"):
            from invarlock.runner.snapshot import Snapshot

            targets = plan.edit.targets(state.model, plan.edit_config)
            state.snapshot = Snapshot.take(
                state.model, targets, mode=self.config.output.snapshot, directory=run.run_dir
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
        if any(o.aborts for o in state.prepared.values()):
            self._decide(state, description)  # nothing edited: the model was never changed
            return
        if evaluator is not None:
            with self._phase(report, "baseline", f"{evaluator.name} on the unedited model"):
                state.evaluation.run_baseline(state.model)
            if state.evaluation.cache_warning:
                report.warnings.append(state.evaluation.cache_warning)

        with self._phase(report, "edit", plan.edit_name):
            state.edited = True  # set first: a failure inside apply() leaves a partial edit
            result = plan.edit.apply(state.model, plan.edit_config)
            report.edit = result.to_dict()
        self._notify("invarlock_edit_applied", run=run, result=result)

        with self._phase(report, "validate", f"{len(guards)} guard(s)"):
            for g in plan.guards:
                outcome = self._guard_call(state, g, VALIDATE, description, edit=report.edit)
                if outcome.aborts and self.config.guards.fail_fast:
                    break
        if evaluator is not None and not any(g["action"] == "abort" for g in report.guards):
            with self._phase(report, "evaluate", f"{evaluator.name} on the edited model"):
                state.evaluated = state.evaluation.run_edited(state.model)
                report.evaluation = state.evaluated.to_dict()
        self._decide(state, description)

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
            progress=self.observer.progress,
        )

    def _configure_guard(self, g: GuardPlan) -> Any:
        try:
            return self.manager.configure_guard(g.name, g.options)
        except (TypeError, ValueError) as exc:
            raise self.config.error(
                f"guards.{g.name}", f"guard {g.name!r} rejected its options: {exc}"
            ) from exc

    def _guard_call(
        self, state: _State, g: GuardPlan, phase: str, description: dict[str, Any], edit: Any = None
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
                context = {
                    "prepare": prepared.raw if prepared else {},
                    "edit": edit or {},
                    "policy": dict(g.options),
                    "model": description,
                    "run_id": state.report.run_id,
                }
                raw = self.manager.guard_validate(g.name, state.model, state.adapter, context)
                outcome = check_validate_result(g.name, raw)
        except MalformedGuardResult as exc:
            outcome = failed_outcome(g.name, phase, str(exc), str(exc))
        except Exception as exc:
            message = f"guard {g.name!r} {phase}() raised {type(exc).__name__}: {exc}"
            outcome = failed_outcome(g.name, phase, message, traceback.format_exc())
        outcome.duration_s = time.perf_counter() - started
        state.report.guards.append({**outcome.to_dict(), "origin": g.origin, "options": g.options})
        self._notify("invarlock_guard_result", run=state.run, outcome=outcome)
        self.observer.guard_outcome(outcome)
        return outcome

    def _decide(self, state: _State, description: dict[str, Any]) -> None:
        report = state.report
        aborts = [g for g in report.guards if g["action"] == "abort"]
        warns = [g for g in report.guards if g["action"] == "warn"]
        gate = state.evaluated.gate_failure() if state.evaluated is not None else None
        if aborts or gate:
            reasons = [f"{g['guard']} ({g['phase']}): {g['message']}" for g in aborts]
            reasons += [gate] if gate else []
            edited = state.edited
            if edited:
                self._restore(state)
            report.status, report.exit_code = ROLLED_BACK, EXIT_ROLLED_BACK
            report.decision = {
                "status": ROLLED_BACK,
                "reasons": reasons,
                "edit_applied": edited,
                "model_restored": edited,
            }
            return
        report.status = WARNED if warns else KEPT
        report.exit_code = EXIT_KEPT
        report.decision = {
            "status": report.status,
            "reasons": [f"{g['guard']}: {g['message']}" for g in warns],
            "edit_applied": True,
            "model_restored": False,
        }
        if self.config.output.export:
            self._export(state)

    def _restore(self, state: _State) -> None:
        with self._phase(state.report, "restore", "snapshot → model"):
            state.snapshot.restore(state.model)  # raises RestoreError unless bit-exact
        state.edited = False
        if state.report.snapshot is not None:
            state.report.snapshot.update(restored=True, verified=True)

    def _export(self, state: _State) -> None:
        if state.plan.edit_name != "quant_rtn":
            state.report.warnings.append(
                f"output.export: nothing to export for edit {state.plan.edit_name!r}"
            )
            return
        from invarlock.edits.export import export_quantized

        assert state.run is not None
        target = state.run.run_dir / "model"
        partial = state.run.run_dir / ".model.partial"
        with self._phase(state.report, "export", str(target)):
            shutil.rmtree(partial, ignore_errors=True)
            source = Path(state.plan.model_id)
            try:
                export_quantized(
                    state.model,
                    state.plan.edit_config,
                    partial,
                    source_dir=source if source.is_dir() else None,
                )
                partial.rename(target)  # the checkpoint appears whole or not at all
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                raise
        state.report.export = {"path": str(target)}

    def _fail(
        self, state: _State, status: str, exit_code: int, message: str, trace: str | None
    ) -> None:
        report = state.report
        report.status, report.exit_code = status, exit_code
        report.error = {"message": message, "traceback": trace}
        restored = False
        if state.edited and state.snapshot is not None:
            try:
                self._restore(state)
                restored = True
            except BaseException as exc:
                report.error["restore_error"] = f"{type(exc).__name__}: {exc}"
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
        try:
            write_json_atomic(run.run_dir / "report.json", report.to_dict())
            events.emit("report_written", path=str(run.run_dir / "report.json"))
            if report.status in (KEPT, WARNED, ROLLED_BACK):
                try:
                    self.manager.hook.invarlock_report(run=run, report=report, run_dir=run.run_dir)
                except Exception as exc:
                    events.emit(
                        "hook_error", hook="invarlock_report", error=f"{type(exc).__name__}: {exc}"
                    )
                    report.warnings.append(f"invarlock_report hook failed: {exc}")
        finally:
            if started_hooks:
                try:
                    self.manager.hook.invarlock_run_finish(
                        run=run, status=report.status, exit_code=report.exit_code
                    )
                except Exception as exc:
                    events.emit(
                        "hook_error",
                        hook="invarlock_run_finish",
                        error=f"{type(exc).__name__}: {exc}",
                    )
            events.emit("run_finish", status=report.status, exit_code=report.exit_code)
            stop_listening()
            events.close()
            if state.snapshot is not None:
                state.snapshot.close()

    # ------------------------------------------------------------------ helpers

    def _make_run_dir(self, run_id: str) -> Path:
        output = self.config.output
        run_dir = (output.dir / (output.run_name or run_id)).absolute()
        if output.run_name and run_dir.exists() and any(run_dir.iterdir()):
            raise self.config.error(
                "output.run_name", f"run directory {run_dir} already exists and is not empty"
            )
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self.config.error(
                "output.dir", f"cannot create run directory {run_dir}: {exc.strerror or exc}"
            ) from None
        return run_dir

    def _notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call a notification hook; a plugin that raises is a plugin error (exit 3)."""
        try:
            getattr(self.manager.hook, hook_name)(**kwargs)
        except (KeyboardInterrupt, InvarlockError):
            raise
        except Exception as exc:
            frames = traceback.extract_tb(exc.__traceback__)
            where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
            raise PluginError(
                f"plugin hook {hook_name} raised {type(exc).__name__}: {exc}{where}"
            ) from exc

    @contextmanager
    def _phase(self, report: RunReport, phase: str, detail: str) -> Iterator[None]:
        self.observer.phase_start(phase, detail)
        started = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            report.timings_s[phase] = round(seconds, 6)
            self.observer.phase_end(phase, seconds)


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
