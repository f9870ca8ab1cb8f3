"""Rich output of ``invarlock run``: progress on stderr (a host plugin), the plan and the
summary on stdout."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.status import Status as Spinner
from rich.table import Table
from rich.text import Text

from invarlock._markers import hookimpl
from invarlock.core.report import RunReport
from invarlock.core.results import GuardOutcome
from invarlock.runner.plan import RunPlan

_ACTION_STYLE = {"continue": "green", "warn": "yellow", "abort": "red"}
_STATUS_TEXT = {
    "kept": ("✅ kept", "green"),
    "warned": ("⚠️  kept with warnings", "yellow"),
    "rolled_back": ("↩️  rolled back", "red"),
    "error": ("❌ error", "red"),
    "interrupted": ("⏹  interrupted", "red"),
}


class RunDisplay:
    """The terminal display of ``invarlock run``: a host plugin implementing the progress
    hooks and ``invarlock_guard_result`` (as pytest's terminal reporter is a plugin).

    A spinner per phase, a bar while windows are scored (terminals only: a redirected
    stderr gets the per-phase lines without a bar), one line per finished phase and per
    guard outcome. The CLI registers it with ``PluginManager.add_host_plugin``, so it is
    not listed as a plugin and its calls trigger no whole-model integrity check.
    """

    #: The name it is registered under (never a plugin name a user can pick: see loading).
    NAME = "invarlock:display"

    def __init__(self, console: Console) -> None:
        self.console = console
        self._spinner: Spinner | None = None
        self._bar: Progress | None = None
        self._bar_started = 0.0

    @hookimpl
    def invarlock_phase_start(self, phase: str, detail: str) -> None:
        self._spinner = self.console.status(Text(f"{phase}: {detail}"))
        self._spinner.start()

    @hookimpl
    def invarlock_phase_end(self, phase: str, seconds: float) -> None:
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        self.console.print(Text(f"  {phase:<9} {seconds:8.3f} s"))

    @hookimpl
    def invarlock_eval_progress(self, phase: str, done: int, total: int, tokens: int) -> None:
        """A bar with windows done and tokens/s, replacing the phase's spinner."""
        if not self.console.is_terminal:
            return
        if self._bar is None:
            if self._spinner is not None:
                self._spinner.stop()
                self._spinner = None
            self._bar = Progress(
                TextColumn(f"  {phase:<9}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("windows  {task.fields[rate]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._bar.add_task(phase, total=total, rate="")
            self._bar.start()
            self._bar_started = time.perf_counter() - 1e-9
        rate = tokens / (time.perf_counter() - self._bar_started)
        self._bar.update(self._bar.task_ids[0], completed=done, rate=f"{rate:,.0f} tok/s")

    @hookimpl
    def invarlock_guard_result(self, outcome: GuardOutcome) -> None:
        style = _ACTION_STYLE.get(outcome.action, "")
        line = Text(f"    {outcome.guard} {outcome.phase}: ")
        line.append(outcome.action, style=style)
        line.append(f" — {outcome.message}")
        self.console.print(line)
        if outcome.error and outcome.error.startswith("Traceback"):
            self.console.print(Text(outcome.error.rstrip(), style="dim"))


def render_plan(console: Console, plan: RunPlan) -> None:
    """``--dry-run``: the model, the edit and the guards as they would run."""
    adapter = (
        plan.adapter
        if plan.adapter == plan.adapter_resolved
        else f"{plan.adapter} → {plan.adapter_resolved}"
    )
    console.print(Text("Plan", style="bold"))
    console.print(Text(f"  model   {plan.model_id}  (adapter {adapter}, device {plan.device})"))
    if plan.model_options:
        console.print(Text(f"          options {plan.model_options}"))
    console.print(Text(f"  edit    {plan.edit_name} {_format_options(plan.edit_params)}"))
    if plan.export_formats:  # each already checked to hold this edit
        console.print(Text(f"  export  {', '.join(plan.export_formats)} (when kept)"))
    table = Table(title="Guards (in order)", title_justify="left", box=box.MARKDOWN)
    for column in ("#", "Guard", "Origin", "Plugin", "Options"):
        table.add_column(column, overflow="fold")
    for index, g in enumerate(plan.guards, 1):
        table.add_row(str(index), g.name, g.origin, g.plugin, _format_options(g.effective))
    for skipped in plan.skipped:
        table.add_row("—", skipped["name"], "", "", skipped["reason"])
    console.print(table)


def render_summary(console: Console, report: RunReport) -> None:
    """The final table: each guard's result, the decision and where the report is."""
    table = Table(title="Guards", title_justify="left", box=box.MARKDOWN)
    for column in ("Guard", "Phase", "Action", "Message", "Time"):
        table.add_column(column, overflow="fold")
    for g in report.guards:
        table.add_row(
            g["guard"],
            g["phase"],
            Text(g["action"], style=_ACTION_STYLE.get(g["action"], "")),
            g["message"],
            f"{g['duration_s'] * 1000:.1f} ms",
        )
    for skipped in report.skipped_guards:
        table.add_row(skipped["name"], "—", "skipped", skipped["reason"], "")
    console.print(table)
    text, style = _STATUS_TEXT.get(report.status, (report.status, ""))
    line = Text("Decision: ")
    line.append(text, style=f"bold {style}")
    integrity = report.integrity or {}
    if report.decision.get("model_restored") and integrity.get("verified"):
        tensors = integrity.get("tensors")
        line.append(f"  (model restored; all {tensors} tensors verified against their load hash)")
    console.print(line)
    if integrity.get("unrestorable"):
        names = integrity["unrestorable"]
        console.print(
            Text(
                f"Model NOT restored: {len(names)} tensor(s) still differ from load: "
                + ", ".join(names),
                style="bold red",
            )
        )
    if report.evaluation:
        render_evaluation(console, report.evaluation)
    if report.edit:
        layers = report.edit.get("layers", [])
        line = Text(f"Edit: {report.edit.get('name')} on {len(layers)} layer(s)")
        measured = [la for la in layers if isinstance(la.get("rel_error"), float)]
        if measured:
            worst = max(measured, key=lambda la: la["rel_error"])
            line.append(f"; worst relative error {worst['rel_error']:.2%} ({worst['name']})")
        console.print(line)
    console.print(Text(f"Report: {_relative(Path(report.run_dir) / 'report.json')}"))
    page = Path(report.run_dir) / "report.html"
    if page.is_file():
        console.print(Text(f"HTML report: {_relative(page)}"))
    if report.export:
        console.print(Text(f"Quantized checkpoint: {_relative(Path(report.export['path']))}"))
    for entry in report.exports or []:
        if entry["format"] != "native":  # proven like every export; listed above
            where = _relative(Path(entry["path"]))
            console.print(Text(f"Export {entry['format']}: {where} (bit-equal when loaded back)"))


def render_evaluation(console: Console, ev: dict[str, Any]) -> None:
    """Perplexities, their ratio with its interval, the gate's verdict and early stopping."""
    base, edited, ratio, gate = ev["baseline"], ev["edited"], ev["ratio"], ev["gate"]
    cached = " (baseline cached)" if base["cached"] else ""
    console.print(
        Text(
            f"Evaluation: {ev['metric']} {_num(base['ppl'])} → {_num(edited['ppl'])} on "
            f"{ev['windows_used']}/{ev['windows_planned']} windows × "
            f"{ev['dataset']['seq_len']} tokens{cached}"
        )
    )
    line = Text(
        f"  ratio {_num(ratio['point'], 4)}  [{_num(ratio['lower'], 4)}, "
        f"{_num(ratio['upper'], 4)}] ({ratio['confidence']:.0%} bootstrap interval)"
    )
    if gate["max_ppl_ratio"] is not None:
        verdict = "passed" if gate["passed"] else "failed"
        line.append(f"  gate ≤ {gate['max_ppl_ratio']:g} on {gate['gate_on']}: ")
        line.append(verdict, style="green" if gate["passed"] else "red")
    console.print(line)
    stop = ev["early_stop"]
    if stop["stopped_at"] is not None:
        console.print(
            Text(
                f"  early stop after {stop['stopped_at']} windows: {stop['reason']}; "
                f"{ev['tokens_saved']:,} tokens saved"
            )
        )


def _num(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _format_options(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in options.items()) or "—"
