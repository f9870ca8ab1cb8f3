"""A run report as one self-contained HTML page: inline CSS and SVG, no script, no link.

The page opens from disk anywhere: it references no network address and no other file.
Sections come in the order a reviewer asks: the decision and why, the evaluation, the
per-layer error, the guards' per-layer measures, the guard verdicts, the time line, then
what ran (model, edit, versions, hashes) and the config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import yaml

from invarlock.reports import plots
from invarlock.reports.markdown import evaluation_line
from invarlock.reports.view import ReportView, format_number, format_percent

WORST_MARKED = 3

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
h1{font-size:1.5em}
h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.worst td{background:#fff1e6}.bar{display:inline-block;height:.7em;background:#e8833a}
.verdict{font-size:1.1em;padding:.6em 1em;border-radius:6px;margin:.5em 0}
.kept{background:#e6f4ea}.warned{background:#fff4d6}.rolled_back,.error,.interrupted{background:#fde7e7}
.continue{color:#1a7f37}.warn{color:#9a6700}.abort{color:#cf222e;font-weight:bold}
pre{background:#f6f8fa;padding:.6em;overflow:auto;font-size:12px}
svg.plot{max-width:100%;height:auto;display:block;margin:.5em 0}
.note{color:#666;font-style:italic}
"""


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    body: str


def page(title: str, sections: Sequence[Section]) -> str:
    """The whole document around ``sections``."""
    body = "\n".join(
        f'<section id="{s.id}">\n<h2>{escape(s.title)}</h2>\n{s.body}\n</section>' for s in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


def render_html(view: ReportView) -> str:
    """The page of one run."""
    runs = [(view.run_id, view)]
    sections = [
        Section("decision", "Decision", decision_body(view)),
        Section("evaluation", "Evaluation", evaluation_body(view, plot(plots.window_deltas, runs))),
        Section("layers", "Quantization error per layer", layers_body(view, runs)),
        Section("measures", "Per-layer guard measures", measures_body(view, runs)),
        Section("guards", "Guard verdicts", guards_body(view)),
        Section("timeline", "Time line", timeline_body(view, runs)),
        Section("run", "Run", run_body(view)),
        Section("config", "Config as run", config_block(view.config)),
    ]
    return page(f"invarlock run {view.run_id}: {view.status_text}", sections)


# --------------------------------------------------------------------------- sections


def decision_body(view: ReportView) -> str:
    parts = [f'<div class="verdict {escape(view.status)}"><b>{escape(view.headline)}</b></div>']
    if view.deciders:
        parts.append(f"<p>Decided by: {escape(', '.join(view.deciders))}.</p>")
    if view.evaluation is not None:
        parts.append(f"<p>{escape(evaluation_line(view.evaluation))}</p>")
    if view.model_restored:
        parts.append("<p>The model was restored from the snapshot and verified bit-exact.</p>")
    if view.error:
        parts.append(f"<p>Error: {escape(str(view.error.get('message', '')))}</p>")
        if view.error.get("traceback"):
            parts.append(f"<pre>{escape(view.error['traceback'])}</pre>")
    if view.warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in view.warnings)
        parts.append(f"<p>Warnings:</p><ul>{items}</ul>")
    return "\n".join(parts)


def evaluation_body(view: ReportView, figure: str) -> str:
    ev = view.evaluation
    if ev is None:
        return _note("This report has no evaluation section (no dataset or eval disabled).")
    rows = [
        ("metric", ev.metric),
        ("baseline", format_number(ev.baseline)),
        ("edited", format_number(ev.edited)),
    ]
    if ev.ratio is not None:
        r = ev.ratio
        rows.append(("ratio", f"{r.point:.4f}"))
        rows.append((f"{r.confidence:.0%} interval", f"[{r.lower:.4f}, {r.upper:.4f}] {r.method}"))
    if ev.sequence is not None:
        rows.append(("confidence sequence", f"[{ev.sequence[0]:.4f}, {ev.sequence[1]:.4f}]"))
    rows.append(("gate", ev.gate_text))
    rows.append(("windows", f"{ev.windows_used} used of {ev.windows_planned} planned"))
    stop = "off" if not ev.early_stop_enabled else "on, ran to the end"
    if ev.stopped_at is not None:
        stop = f"stopped at window {ev.stopped_at}: {ev.stop_reason or ''}"
    rows.append(("early stopping", stop))
    if ev.tokens_evaluated is not None:
        rows.append(
            ("tokens", f"{ev.tokens_evaluated:,} evaluated, {ev.tokens_saved or 0:,} saved")
        )
    for key in ("source", "seq_len", "stride", "seed", "fingerprint"):
        if key in ev.dataset:
            rows.append((f"dataset {key}", format_number(ev.dataset[key])))
    deltas = ""
    if ev.deltas:
        deltas = html_table(
            ["window", "Δ NLL (edited − baseline)"],
            [[str(i), f"{d:+.5f}"] for i, d in enumerate(ev.deltas, 1)],
            numeric=(0, 1),
        )
        deltas = f"<details><summary>Per-window loss change</summary>{deltas}</details>"
    return facts_table(rows) + figure + deltas


def layers_body(view: ReportView, runs: list[tuple[str, ReportView]]) -> str:
    if not view.layers:
        return _note("The edit did not run: no per-layer error.")
    worst = {la.name for la in view.worst_layers(WORST_MARKED)}
    top = max((la.rel_error or 0.0 for la in view.layers), default=0.0) or 1.0
    rows, marked = [], []
    for index, la in enumerate(view.layers, 1):
        bar = f'<span class="bar" style="width:{6 * (la.rel_error or 0) / top:.2f}em"></span>'
        rows.append(
            [
                str(index),
                escape(la.name),
                f"{escape(format_percent(la.rel_error))} {bar}",
                escape(format_number(la.max_error)),
                escape(f"{la.bits}-bit {la.scheme}" if la.bits else la.scheme),
            ]
        )
        marked.append(la.name in worst)
    intro = (
        f"<p>{len(view.layers)} weights in model order; the {WORST_MARKED} worst are "
        "highlighted. Relative error is ‖W′−W‖<sub>F</sub>/‖W‖<sub>F</sub>.</p>"
    )
    figure = plot(plots.layer_errors, runs)
    table = html_table(
        ["#", "layer", "relative error", "max abs error", "scheme"],
        rows,
        numeric=(0, 2, 3),
        escaped=True,
        marked=marked,
    )
    return intro + figure + table


def measures_body(view: ReportView, runs: list[tuple[str, ReportView]]) -> str:
    if not view.measures:
        return _note("No guard reported per-layer numbers (spectral norm, RMT outliers).")
    parts = []
    for guard, rows in view.measures.items():
        extra_keys = sorted({k for m in rows for k in m.extra})
        headers = ["layer", "family", "before", "after", "change", *extra_keys]
        body = [
            [
                m.name,
                m.family or "—",
                format_number(m.before),
                format_number(m.after),
                format_percent(m.rel_change),
                *(format_number(m.extra.get(k)) for k in extra_keys),
            ]
            for m in rows
        ]
        parts.append(f"<h3>{escape(guard)}</h3>")
        parts.append(f"<p>{len(rows)} weight(s) reported by {escape(guard)}, in model order.</p>")
        parts.append(plot(lambda r, g=guard: plots.layer_measures(r, g), runs))
        parts.append(html_table(headers, body, numeric=tuple(range(2, len(headers)))))
    return "\n".join(parts)


def guards_body(view: ReportView) -> str:
    if not view.guards:
        return _note("No guard ran.")
    rows = []
    for g in view.guards:
        metrics = ", ".join(f"{k}={format_number(v)}" for k, v in g.metrics.items()) or "—"
        message = escape(g.message)
        if g.warnings:
            message += "<br>" + "<br>".join(f"warning: {escape(w)}" for w in g.warnings)
        if g.error:
            message += f"<details><summary>error</summary><pre>{escape(g.error)}</pre></details>"
        rows.append(
            [
                escape(g.guard),
                escape(g.phase),
                f'<span class="{escape(g.action)}">{escape(g.action)}</span>',
                message,
                escape(metrics),
                f"{g.duration_s * 1000:.1f} ms",
            ]
        )
    return html_table(
        ["guard", "phase", "action", "message", "metrics", "time"],
        rows,
        numeric=(5,),
        escaped=True,
    )


def timeline_body(view: ReportView, runs: list[tuple[str, ReportView]]) -> str:
    if not view.phases:
        return _note("No phase finished.")
    rows = [
        [p.name, f"{p.start_s:.3f}", f"{p.duration_s:.3f}", f"{p.start_s + p.duration_s:.3f}"]
        for p in view.phases
    ]
    return plot(plots.timeline, runs) + html_table(
        ["phase", "start (s)", "duration (s)", "end (s)"], rows, numeric=(1, 2, 3)
    )


def run_body(view: ReportView) -> str:
    """What ran and its hashes; the exports with their proof; the integrity checks."""
    parts = [facts_table(view.facts)]
    exports = view.data.get("exports") or []
    if exports:
        rows = []
        for entry in exports:
            files = entry.get("files", [])
            proof = entry.get("proof") or {}
            rows.append(
                [
                    entry.get("format", "?"),
                    entry.get("path", ""),
                    f"{len(files)} file(s), {sum(f.get('bytes', 0) for f in files):,} bytes",
                    format_number(proof.get("bit_equal")),
                    format_number(proof.get("max_abs_weight_diff")),
                    format_number(proof.get("max_abs_logit_diff")),
                ]
            )
        headers = ["format", "path", "files", "bit-equal on load", "max |Δw|", "max |Δlogit|"]
        parts += ["<h3>Exports</h3>", html_table(headers, rows, numeric=(4, 5))]
    integrity = view.data.get("integrity") or {}
    if integrity.get("checks"):
        rows = [
            [
                check.get("phase", ""),
                "ok" if check.get("ok") else "changed",
                ", ".join(check.get("changed", [])) or "—",
                check.get("plugin") or "—",
            ]
            for check in integrity["checks"]
        ]
        parts += [
            "<h3>Integrity checks</h3>",
            html_table(["phase", "result", "changed tensors", "plugin"], rows),
        ]
    return "\n".join(parts)


def facts_table(facts: Sequence[tuple[str, str]]) -> str:
    return html_table(["", ""], [[k, v] for k, v in facts])


def config_block(config: dict[str, Any]) -> str:
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True) if config else "{}"
    return f"<pre>{escape(text)}</pre>"


# --------------------------------------------------------------------------- building blocks


def plot(draw: Callable[[Any], str | None], runs: Any) -> str:
    """A figure, or the note that says how to get the plots."""
    if not plots.plots_available():
        return _note(f"Plots need matplotlib: {plots.INSTALL_HINT}")
    svg = draw(runs)
    return f"<figure>{svg}</figure>" if svg else ""


def html_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric: tuple[int, ...] = (),
    escaped: bool = False,
    marked: Sequence[bool] = (),
) -> str:
    """A table; cells are escaped unless ``escaped`` says the caller did it."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    lines = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for index, row in enumerate(rows):
        cells = "".join(
            f"<td{' class=num' if i in numeric else ''}>{c if escaped else escape(str(c))}</td>"
            for i, c in enumerate(row)
        )
        css = ' class="worst"' if index < len(marked) and marked[index] else ""
        lines.append(f"<tr{css}>{cells}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'
