"""Two runs side by side: config differences, decisions, evaluation ratios with their
intervals, per-layer error and guard-measure differences, and the same plots overlaid."""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

from invarlock.reports import plots
from invarlock.reports.html import Section, html_table, page, plot
from invarlock.reports.markdown import evaluation_line, table
from invarlock.reports.view import ReportView, format_number, format_percent

MISSING = "—"
TOP_DIFFERENCES = 10


def labels(a: ReportView, b: ReportView) -> tuple[str, str]:
    """``A: <run dir name>`` and ``B: <run dir name>``."""
    return f"A: {a.source.parent.name or a.run_id}", f"B: {b.source.parent.name or b.run_id}"


def config_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(key.path, value in A, value in B)`` for every leaf that differs, sorted by key."""
    left, right = _flatten(a), _flatten(b)
    keys = sorted(set(left) | set(right))
    return [
        (key, left.get(key, MISSING), right.get(key, MISSING))
        for key in keys
        if left.get(key, MISSING) != right.get(key, MISSING)
    ]


def layer_rows(a: ReportView, b: ReportView) -> list[list[str]]:
    """Per layer in model order: both relative errors, their difference, both max errors."""
    right = {la.name: la for la in b.layers}
    names = [la.name for la in a.layers] + [n for n in right if n not in {x.name for x in a.layers}]
    left = {la.name: la for la in a.layers}
    rows = []
    for name in names:
        x, y = left.get(name), right.get(name)
        rel_a, rel_b = getattr(x, "rel_error", None), getattr(y, "rel_error", None)
        diff = None if rel_a is None or rel_b is None else rel_b - rel_a
        rows.append(
            [
                name,
                format_percent(rel_a),
                format_percent(rel_b),
                MISSING if diff is None else f"{diff * 100:+.2f} pp",
                format_number(getattr(x, "max_error", None)),
                format_number(getattr(y, "max_error", None)),
            ]
        )
    return rows


def measure_rows(a: ReportView, b: ReportView, guard: str) -> list[list[str]]:
    left = {m.name: m for m in a.measures.get(guard, [])}
    right = {m.name: m for m in b.measures.get(guard, [])}
    names = list(left) + [n for n in right if n not in left]
    rows = []
    for name in names:
        x, y = left.get(name), right.get(name)
        ca = x.rel_change if x else None
        cb = y.rel_change if y else None
        rows.append(
            [
                name,
                format_number(x.before if x else (y.before if y else None)),
                format_number(x.after if x else None),
                format_number(y.after if y else None),
                format_percent(ca),
                format_percent(cb),
            ]
        )
    return rows


def decision_rows(a: ReportView, b: ReportView) -> list[list[str]]:
    def ratio(view: ReportView) -> str:
        ev = view.evaluation
        if ev is None or ev.ratio is None:
            return MISSING
        r = ev.ratio
        return f"{r.point:.4f} [{r.lower:.4f}, {r.upper:.4f}] ({r.confidence:.0%})"

    def gate(view: ReportView) -> str:
        return view.evaluation.gate_text if view.evaluation else MISSING

    def worst(view: ReportView) -> str:
        top = view.worst_layers(1)
        return f"{format_percent(top[0].rel_error)} ({top[0].name})" if top else MISSING

    return [
        ["decision", a.status_text, b.status_text],
        ["exit code", str(a.exit_code), str(b.exit_code)],
        ["decided by", ", ".join(a.deciders) or MISSING, ", ".join(b.deciders) or MISSING],
        ["reasons", "; ".join(a.reasons) or MISSING, "; ".join(b.reasons) or MISSING],
        ["ppl ratio [interval]", ratio(a), ratio(b)],
        ["gate", gate(a), gate(b)],
        ["worst relative error", worst(a), worst(b)],
    ]


def render_compare_markdown(a: ReportView, b: ReportView) -> str:
    la, lb = labels(a, b)
    parts = [f"## invarlock: {la} vs {lb}", "", table(["", la, lb], decision_rows(a, b))]
    diffs = config_differences(a.config, b.config)
    parts += ["", "### Config differences", ""]
    parts.append(table(["key", la, lb], [list(d) for d in diffs]) if diffs else "None.")
    for label, view in ((la, a), (lb, b)):
        if view.evaluation is not None:
            parts += ["", f"{label}: {evaluation_line(view.evaluation)}"]
    rows = layer_rows(a, b)
    if rows:
        ranked = sorted(rows, key=lambda r: _pp(r[3]), reverse=True)[:TOP_DIFFERENCES]
        parts += ["", f"### Largest per-layer error differences (of {len(rows)})", ""]
        parts.append(table(["layer", la, lb, "B − A", f"max {la}", f"max {lb}"], ranked))
    return "\n".join(parts) + "\n"


def render_compare_html(a: ReportView, b: ReportView) -> str:
    la, lb = labels(a, b)
    runs = [(la, a), (lb, b)]
    diffs = config_differences(a.config, b.config)
    config = (
        html_table(["key", la, lb], [list(d) for d in diffs])
        if diffs
        else '<p class="note">The configs are the same.</p>'
    )
    evaluation = (
        "".join(
            f"<p>{escape(label)}: {escape(evaluation_line(view.evaluation))}</p>"
            for label, view in runs
            if view.evaluation is not None
        )
        or '<p class="note">Neither report has an evaluation section.</p>'
    )
    layers = (
        plot(plots.layer_errors, runs)
        + html_table(
            ["layer", la, lb, "B − A", f"max {la}", f"max {lb}"],
            layer_rows(a, b),
            numeric=(1, 2, 3, 4, 5),
        )
        if a.layers or b.layers
        else '<p class="note">Neither edit ran.</p>'
    )
    measures = []
    for guard in dict.fromkeys([*a.measures, *b.measures]):
        measures.append(f"<h3>{escape(guard)}</h3>")
        measures.append(plot(lambda r, g=guard: plots.layer_measures(r, g), runs))
        measures.append(
            html_table(
                ["layer", "before", f"after {la}", f"after {lb}", f"change {la}", f"change {lb}"],
                measure_rows(a, b, guard),
                numeric=(1, 2, 3, 4, 5),
            )
        )
    sections = [
        Section("decision", "Decisions", html_table(["", la, lb], decision_rows(a, b))),
        Section("config", "Config differences", config),
        Section("evaluation", "Evaluation", evaluation + plot(plots.window_deltas, runs)),
        Section("layers", "Quantization error per layer", layers),
        Section(
            "measures",
            "Per-layer guard measures",
            "\n".join(measures) or '<p class="note">No per-layer guard measures.</p>',
        ),
        Section("guards", "Guard verdicts", html_table(["guard", la, lb], _guard_rows(a, b))),
        Section("timeline", "Time line", plot(plots.timeline, runs)),
        Section("run", "Runs", html_table(["", la, lb], _fact_rows(a, b))),
    ]
    return page(f"invarlock: {la} vs {lb}", sections)


def _guard_rows(a: ReportView, b: ReportView) -> list[list[str]]:
    def verdicts(view: ReportView) -> dict[str, str]:
        return {f"{g.guard} ({g.phase})": f"{g.action}: {g.message}" for g in view.guards}

    left, right = verdicts(a), verdicts(b)
    keys = list(left) + [k for k in right if k not in left]
    return [[k, left.get(k, MISSING), right.get(k, MISSING)] for k in keys]


def _fact_rows(a: ReportView, b: ReportView) -> list[list[str]]:
    left, right = dict(a.facts), dict(b.facts)
    keys = list(left) + [k for k in right if k not in left]
    return [[k, left.get(k, MISSING), right.get(k, MISSING)] for k in keys]


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, Mapping) and value:
        flat: dict[str, str] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: json.dumps(value, ensure_ascii=False)}


def _pp(text: str) -> float:
    try:
        return abs(float(text.removesuffix(" pp")))
    except ValueError:
        return -1.0
