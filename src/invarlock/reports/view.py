"""The report as the renderers read it: typed rows pulled once from ``report.json``.

:func:`load_report` reads and validates a run directory or a ``report.json`` file;
:class:`ReportView` holds what the Markdown, HTML and comparison pages show, in the order
they show it. Older and newer sections are optional: a view field is empty when absent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invarlock.reports.validate import InvalidReport, check

REPORT_FILE = "report.json"
STATUS_TEXT = {
    "kept": "Kept",
    "warned": "Kept with warnings",
    "rolled_back": "Rolled back",
    "error": "Failed",
    "interrupted": "Interrupted",
}


@dataclass(frozen=True)
class LayerError:
    """One weight the edit wrote, in model order."""

    name: str
    rel_error: float | None
    max_error: float | None
    bits: int | None
    scheme: str


@dataclass(frozen=True)
class LayerMeasure:
    """One guard's per-layer numbers (e.g. spectral norm) before and after the edit."""

    guard: str
    name: str
    family: str
    before: float | None
    after: float | None
    extra: dict[str, Any]

    @property
    def rel_change(self) -> float | None:
        if self.before is None or self.after is None or self.before == 0:
            return None
        return (self.after - self.before) / abs(self.before)


@dataclass(frozen=True)
class GuardRow:
    guard: str
    phase: str
    action: str
    message: str
    metrics: dict[str, Any]  # scalar metrics only; per-layer lists are in ``measures``
    warnings: list[str]
    duration_s: float
    error: str | None


@dataclass(frozen=True)
class Phase:
    name: str
    start_s: float
    duration_s: float


@dataclass(frozen=True)
class Interval:
    point: float
    lower: float
    upper: float
    confidence: float
    method: str


@dataclass(frozen=True)
class EvaluationView:
    metric: str
    baseline: float | None
    edited: float | None
    ratio: Interval | None
    sequence: tuple[float, float] | None
    gate_max: float | None
    gate_on: str
    gate_passed: bool | None
    windows_planned: int
    windows_used: int
    tokens_evaluated: int | None
    tokens_saved: int | None
    early_stop_enabled: bool
    stopped_at: int | None
    stop_reason: str | None
    deltas: list[float]  # per window: edited NLL − baseline NLL, evaluation order
    dataset: dict[str, Any]

    @property
    def gate_text(self) -> str:
        if self.gate_max is None:
            return "no gate"
        verdict = {True: "passed", False: "failed", None: "not judged"}[self.gate_passed]
        return f"{verdict}: {self.gate_on} ≤ {self.gate_max:g}"


@dataclass
class ReportView:
    """Everything a page shows about one run."""

    source: Path
    data: dict[str, Any]
    run_id: str
    status: str
    exit_code: int
    reasons: list[str]
    deciders: list[str]  # the guards (and gate) whose verdict decided
    model_restored: bool
    evaluation: EvaluationView | None
    layers: list[LayerError]
    measures: dict[str, list[LayerMeasure]]  # guard → per-layer numbers, model order
    guards: list[GuardRow]
    phases: list[Phase]
    facts: list[tuple[str, str]]  # model, edit, versions, run id, hashes
    warnings: list[str]
    error: dict[str, Any] | None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def status_text(self) -> str:
        return STATUS_TEXT.get(self.status, self.status)

    @property
    def headline(self) -> str:
        """One line: the decision and why."""
        why = "; ".join(self.reasons) if self.reasons else _all_passed(self.guards)
        ev = self.evaluation
        if not self.reasons and ev is not None and ev.gate_passed and ev.ratio is not None:
            bound = ev.ratio.upper if ev.gate_on == "upper" else ev.ratio.point
            why += f"; evaluation gate passed ({ev.metric} ratio {ev.gate_on} {bound:.4f}"
            why += f" ≤ {ev.gate_max:g})"
        return f"{self.status_text} (exit {self.exit_code}): {why}"

    def worst_layers(self, count: int) -> list[LayerError]:
        measured = [la for la in self.layers if la.rel_error is not None]
        return sorted(measured, key=lambda la: la.rel_error or 0.0, reverse=True)[:count]


def load_report(path: Path) -> ReportView:
    """Read a run directory or ``report.json``, validate it and build its view."""
    file = path / REPORT_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidReport(
            f"{file}: no such file (expected a run directory or report.json)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidReport(f"{file}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidReport(f"{file}: not JSON: {exc}") from None
    check(data, str(file))
    if not str(data["schema"]).startswith("invarlock.report/"):
        raise InvalidReport(f"{file}: a {data['schema']} document, not a run report")
    return build_view(data, file)


def build_view(data: dict[str, Any], source: Path) -> ReportView:
    """The view of a valid report document."""
    guards = [_guard_row(g) for g in data.get("guards", [])]
    decision = data.get("decision") or {}
    evaluation = _evaluation(data.get("evaluation"))
    layers = _layers(data.get("edit"))
    return ReportView(
        source=source,
        data=data,
        run_id=data["run_id"],
        status=data["status"],
        exit_code=data["exit_code"],
        reasons=list(decision.get("reasons", [])),
        deciders=_deciders(data, evaluation),
        model_restored=bool(decision.get("model_restored")),
        evaluation=evaluation,
        layers=layers,
        measures=_measures(data.get("guards", []), [la.name for la in layers]),
        guards=guards,
        phases=_phases(data),
        facts=_facts(data),
        warnings=list(data.get("warnings", [])),
        error=data.get("error"),
        config=dict(data.get("config", {})),
    )


# --------------------------------------------------------------------------- sections


def _all_passed(guards: list[GuardRow]) -> str:
    checked = {g.guard for g in guards}
    return f"all {len(checked)} guard(s) passed" if checked else "no guard ran"


def _deciders(data: dict[str, Any], evaluation: EvaluationView | None) -> list[str]:
    status = data["status"]
    wanted = {"rolled_back": "abort", "warned": "warn"}.get(status)
    names = [
        f"{g['guard']} ({g['phase']})" for g in data.get("guards", []) if g["action"] == wanted
    ]
    if evaluation is not None and evaluation.gate_passed is False:
        names.append("evaluation gate")
    return names


def _layers(edit: Mapping[str, Any] | None) -> list[LayerError]:
    if not edit:
        return []
    return [
        LayerError(
            name=layer["name"],
            rel_error=layer.get("rel_error"),
            max_error=layer.get("max_error", layer.get("max_abs_error")),
            bits=layer.get("bits"),
            scheme=str(layer.get("scheme", "")),
        )
        for layer in edit.get("layers", [])
    ]


def _module_name(name: str) -> str:
    return name.removesuffix(".weight")


def _measures(guards: list[dict[str, Any]], order: list[str]) -> dict[str, list[LayerMeasure]]:
    """Per-layer numbers of each guard's validate call: ``metrics.layers`` (the contract),
    else the spectral guard's ``metrics.worst`` rows (σ before/after, the worst ones only)."""
    rank = {name: index for index, name in enumerate(order)}
    found: dict[str, list[LayerMeasure]] = {}
    for g in guards:
        if g["phase"] != "validate":
            continue
        metrics = g.get("metrics") or {}
        rows = metrics.get("layers")
        if isinstance(rows, list):
            measures = [_measure(g["guard"], row) for row in rows if isinstance(row, dict)]
        elif g["guard"] == "spectral" and isinstance(metrics.get("worst"), list):
            measures = [
                _measure(
                    g["guard"],
                    {**row, "before": row.get("sigma_before"), "after": row.get("sigma_after")},
                )
                for row in metrics["worst"]
                if isinstance(row, dict) and "name" in row
            ]
        else:
            continue
        measures.sort(key=lambda m: rank.get(_module_name(m.name), len(rank)))
        if measures:
            found[g["guard"]] = measures
    return found


_MEASURE_KEYS = {"name", "family", "before", "after", "sigma_before", "sigma_after", "rel_change"}


def _measure(guard: str, row: dict[str, Any]) -> LayerMeasure:
    return LayerMeasure(
        guard=guard,
        name=str(row.get("name", "")),
        family=str(row.get("family") or ""),
        before=_number(row.get("before")),
        after=_number(row.get("after")),
        extra={k: v for k, v in row.items() if k not in _MEASURE_KEYS and _is_scalar(v)},
    )


def _guard_row(g: dict[str, Any]) -> GuardRow:
    metrics = {k: v for k, v in (g.get("metrics") or {}).items() if _is_scalar(v)}
    return GuardRow(
        guard=g["guard"],
        phase=g["phase"],
        action=g["action"],
        message=g["message"],
        metrics=metrics,
        warnings=list(g.get("warnings", [])),
        duration_s=float(g.get("duration_s", 0.0)),
        error=g.get("error"),
    )


def _phases(data: dict[str, Any]) -> list[Phase]:
    recorded = data.get("phases")
    if recorded:
        return [Phase(p["name"], p["start_s"], p["duration_s"]) for p in recorded]
    # Reports without ``phases``: place the phases end to end, in the order they ran.
    phases, start = [], 0.0
    for name, seconds in (data.get("timings_s") or {}).items():
        phases.append(Phase(name, start, seconds))
        start += seconds
    return phases


def _evaluation(section: Mapping[str, Any] | None) -> EvaluationView | None:
    if not section:
        return None
    ratio = section.get("ratio") or {}
    interval = None
    if all(isinstance(ratio.get(k), (int, float)) for k in ("point", "lower", "upper")):
        interval = Interval(
            point=ratio["point"],
            lower=ratio["lower"],
            upper=ratio["upper"],
            confidence=float(ratio.get("confidence", 0.95)),
            method=str(ratio.get("method", "")),
        )
    sequence = section.get("sequence")
    gate = section.get("gate") or {}
    early = section.get("early_stop") or {}
    pairs = section.get("pairs") or []
    return EvaluationView(
        metric=str(section.get("metric", "")),
        baseline=_number((section.get("baseline") or {}).get("ppl")),
        edited=_number((section.get("edited") or {}).get("ppl")),
        ratio=interval,
        sequence=(sequence["lower"], sequence["upper"]) if sequence else None,
        gate_max=_number(gate.get("max_ppl_ratio")),
        gate_on=str(gate.get("gate_on", "upper")),
        gate_passed=gate.get("passed"),
        windows_planned=int(section.get("windows_planned", len(pairs))),
        windows_used=int(section.get("windows_used", len(pairs))),
        tokens_evaluated=section.get("tokens_evaluated"),
        tokens_saved=section.get("tokens_saved"),
        early_stop_enabled=bool(early.get("enabled", False)),
        stopped_at=early.get("stopped_at"),
        stop_reason=early.get("reason"),
        deltas=[edited - base for base, edited in pairs],
        dataset=dict(section.get("dataset") or {}),
    )


def _facts(data: dict[str, Any]) -> list[tuple[str, str]]:
    model = data.get("model") or {}
    plan_model = (data.get("plan") or {}).get("model") or {}
    edit = data.get("edit") or (data.get("plan") or {}).get("edit") or {}
    params = edit.get("params") or {}
    facts = [
        ("run id", data["run_id"]),
        ("model", str(model.get("id") or plan_model.get("id", "?"))),
        ("adapter", str(model.get("adapter") or plan_model.get("adapter_resolved", "?"))),
    ]
    for key in ("model_class", "n_params", "dtype", "device"):
        if key in model:
            facts.append((key.replace("_", " "), _plain(model[key])))
    facts.append(("edit", f"{edit.get('name', '?')} {_options(params)}".strip()))
    if edit.get("numel") is not None:
        facts.append(("weights written", f"{edit['numel']:,} in {len(edit.get('layers', []))}"))
    snapshot = data.get("snapshot") or {}
    if snapshot.get("digest"):
        facts.append(("snapshot digest", f"sha256:{snapshot['digest']}"))
        facts.append(("snapshot", f"{snapshot.get('mode')}, {snapshot.get('bytes', 0):,} bytes"))
    integrity = data.get("integrity") or {}
    if integrity.get("digest_at_load"):
        facts.append(
            ("model fingerprint", f"{integrity.get('algorithm', '')}:{integrity['digest_at_load']}")
        )
    dataset = (data.get("evaluation") or {}).get("dataset") or {}
    if dataset.get("fingerprint"):
        facts.append(("dataset fingerprint", str(dataset["fingerprint"])))
    for export in data.get("exports") or []:
        facts.append((f"export {export.get('format')}", str(export.get("path"))))
    if (data.get("export") or {}).get("path"):
        facts.append(("checkpoint", data["export"]["path"]))
    facts.append(("started", str(data.get("started_at"))))
    facts.append(("finished", str(data.get("finished_at"))))
    versions = data.get("versions") or {}
    facts.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    facts.append(("schema", data["schema"]))
    return facts


# --------------------------------------------------------------------------- values


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _plain(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _options(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items() if v not in (None, [], {}))


def format_number(value: Any, digits: int = 4) -> str:
    """A number for a table cell: ``—`` for missing, significant digits otherwise."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def format_percent(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"
