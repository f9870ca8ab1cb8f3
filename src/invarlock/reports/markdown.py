"""A run report as Markdown: short enough for a pull request or a chat message."""

from __future__ import annotations

from collections.abc import Sequence

from invarlock.reports.view import (
    EvaluationView,
    ReportView,
    format_number,
    format_percent,
)

WORST_LAYERS = 5


def render_markdown(view: ReportView) -> str:
    """Decision and why, evaluation, worst layers, guard verdicts, timings, identity."""
    parts = [f"## invarlock run `{view.run_id}`: {view.status_text}", "", f"**{view.headline}**"]
    if view.model_restored:
        parts.append("\nThe model was restored from the snapshot and verified bit-exact.")
    if view.error:
        parts += ["", f"Error: {_cell(view.error.get('message', ''))}"]
    if view.evaluation is not None:
        parts += ["", "### Evaluation", "", evaluation_line(view.evaluation)]
    if view.layers:
        worst = view.worst_layers(WORST_LAYERS)
        parts += ["", f"### Quantization error ({len(view.layers)} layers, worst first)", ""]
        parts.append(
            table(
                ["layer", "relative error", "max abs error", "scheme"],
                [
                    [la.name, format_percent(la.rel_error), format_number(la.max_error), la.scheme]
                    for la in worst
                ],
            )
        )
    for guard, rows in view.measures.items():
        changes = [m for m in rows if m.rel_change is not None]
        if changes:
            top = max(changes, key=lambda m: abs(m.rel_change or 0.0))
            parts += [
                "",
                f"{guard}: largest per-layer change {format_percent(top.rel_change)} "
                f"({top.name}: {format_number(top.before)} → {format_number(top.after)}).",
            ]
    if view.guards:
        parts += ["", "### Guards", ""]
        parts.append(
            table(
                ["guard", "phase", "action", "message"],
                [[g.guard, g.phase, g.action, g.message] for g in view.guards],
            )
        )
    if view.warnings:
        parts += ["", "### Warnings", ""] + [f"- {_cell(w)}" for w in view.warnings]
    if view.phases:
        timings = ", ".join(f"{p.name} {p.duration_s:.2f} s" for p in view.phases)
        parts += ["", f"Phases: {timings}."]
    parts += ["", "<details><summary>Run</summary>", ""]
    parts.append(table(["", ""], [[k, f"`{v}`"] for k, v in view.facts]))
    parts += ["", "</details>", ""]
    return "\n".join(parts)


def evaluation_line(ev: EvaluationView) -> str:
    """``perplexity 21.3 → 21.5, ratio 1.009 [1.002, 1.016] (95%); gate passed: upper ≤ 1.1``."""
    text = f"{ev.metric} {format_number(ev.baseline)} → {format_number(ev.edited)}"
    if ev.ratio is not None:
        r = ev.ratio
        text += (
            f", ratio {r.point:.4f} [{r.lower:.4f}, {r.upper:.4f}] ({r.confidence:.0%}"
            f"{', ' + r.method if r.method else ''})"
        )
    text += f"; gate {ev.gate_text}"
    text += f"; {ev.windows_used} of {ev.windows_planned} windows"
    if ev.stopped_at is not None:
        text += f" (early stop: {ev.stop_reason or 'decided'})"
    return text + "."


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; cells are escaped for ``|`` and newlines."""
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
