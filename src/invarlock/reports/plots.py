"""Plots as inline SVG, drawn with matplotlib (the ``plots`` extra) on the Agg backend.

Every function takes one or more labelled runs and overlays them, so a run's page and the
comparison of two runs share one drawing code. Without matplotlib, :func:`plots_available`
is False and the pages show their tables only.
"""

from __future__ import annotations

import importlib.util
import io
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from invarlock.reports.view import ReportView

INSTALL_HINT = "pip install 'invarlock[plots]'"
Run = tuple[str, ReportView]  # (label, view)
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
_NAMED_TICKS = 40  # more layers than this: ticks show indices, not names


def plots_available() -> bool:
    """True when matplotlib is installed (``pip install 'invarlock[plots]'``)."""
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):  # a broken or half-removed installation
        return False


def layer_errors(runs: Sequence[Run]) -> str | None:
    """Relative and max quantization error per layer, in model order."""
    names = _union([[la.name for la in view.layers] for _, view in runs])
    if not names:
        return None
    edges = [i - 0.5 for i in range(len(names) + 1)]
    with _figure(2, len(names)) as (fig, axes):
        for index, (label, view) in enumerate(runs):
            by_name = {la.name: la for la in view.layers}
            rel = [_pct(getattr(by_name.get(n), "rel_error", None)) for n in names]
            top = [_val(getattr(by_name.get(n), "max_error", None)) for n in names]
            color = _COLORS[index % len(_COLORS)]
            alpha = 0.85 if len(runs) == 1 else 0.5
            # One step patch per run (not one bar per layer): fast with hundreds of layers.
            axes[0].stairs(_zero(rel), edges, fill=True, color=color, alpha=alpha, label=label)
            axes[1].stairs(_zero(top), edges, fill=True, color=color, alpha=alpha, label=label)
        axes[0].set_ylabel("relative error (%)")
        axes[1].set_ylabel("max |ΔW|")
        _layer_ticks(axes[1], names)
        _legend(axes[0], runs)
        return _svg(fig, "layer-errors")


def layer_measures(runs: Sequence[Run], guard: str) -> str | None:
    """A guard's per-layer measure (e.g. spectral norm) before and after, and its change."""
    series = [(label, view.measures.get(guard, [])) for label, view in runs]
    layer_order = _union([[la.name for la in view.layers] for _, view in runs])
    rank = {name: index for index, name in enumerate(layer_order)}
    names = sorted(
        _union([[m.name for m in rows] for _, rows in series]),
        key=lambda n: rank.get(n.removesuffix(".weight"), len(rank)),
    )
    if not names:
        return None
    with _figure(2, len(names)) as (fig, axes):
        xs = list(range(len(names)))
        before: dict[str, float] = {}
        for _, rows in series:
            for m in rows:
                if m.before is not None:
                    before.setdefault(m.name, m.before)
        points = [before.get(n, math.nan) for n in names]
        axes[0].plot(xs, points, "o", color="#7f7f7f", label="before", mfc="none")
        for index, (label, rows) in enumerate(series):
            by_name = {m.name: m for m in rows}
            color = _COLORS[index % len(_COLORS)]
            after = [_val(getattr(by_name.get(n), "after", None)) for n in names]
            change = [_pct(by_name[n].rel_change) if n in by_name else math.nan for n in names]
            axes[0].plot(xs, after, "x", color=color, label=f"after ({label})")
            axes[1].plot(xs, change, "o-", color=color, label=label, ms=3)
        axes[0].set_ylabel(f"{guard}: value")
        axes[1].set_ylabel("change (%)")
        axes[1].axhline(0, color="#999999", lw=0.8)
        _layer_ticks(axes[1], names)
        axes[0].legend(fontsize=7, loc="best")
        return _svg(fig, f"measures-{guard}")


def window_deltas(runs: Sequence[Run]) -> str | None:
    """Per-window loss change (edited − baseline NLL), its running mean and the interval."""
    evaluated = [(label, view.evaluation) for label, view in runs if view.evaluation]
    if not any(ev.deltas for _, ev in evaluated):
        return None
    with _figure(1, 12) as (fig, axes):
        ax = axes[0]
        for index, (label, ev) in enumerate(evaluated):
            color = _COLORS[index % len(_COLORS)]
            xs = list(range(1, len(ev.deltas) + 1))
            running = [sum(ev.deltas[:i]) / i for i in xs]
            ax.plot(xs, ev.deltas, "o", color=color, ms=3, alpha=0.6, label=f"{label}: window")
            ax.plot(xs, running, "-", color=color, label=f"{label}: running mean")
            if ev.ratio is not None and ev.ratio.lower > 0 and ev.ratio.upper > 0:
                ax.axhspan(
                    math.log(ev.ratio.lower),
                    math.log(ev.ratio.upper),
                    color=color,
                    alpha=0.15,
                    label=f"{label}: {ev.ratio.confidence:.0%} interval",
                )
            if ev.windows_used < ev.windows_planned:
                ax.axvline(ev.windows_used, color=color, ls="--", lw=0.8)
            top = max([*map(abs, ev.deltas), math.log(ev.ratio.upper) if ev.ratio else 0.0])
            if ev.gate_max and 0 < math.log(ev.gate_max) < 3 * top:  # else it flattens the rest
                ax.axhline(math.log(ev.gate_max), color="#444444", ls=":", lw=1, label="gate")
        from matplotlib.ticker import MaxNLocator

        planned = max(ev.windows_planned for _, ev in evaluated)
        ax.set_xlim(0.5, max(planned, 1) + 0.5)  # windows early stopping saved stay visible
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.axhline(0, color="#999999", lw=0.8)
        ax.set_xlabel("window (evaluation order; dashed: early stop)")
        ax.set_ylabel("Δ NLL per token (= log ppl ratio)")
        ax.legend(fontsize=7, loc="best")
        return _svg(fig, "window-deltas")


def timeline(runs: Sequence[Run]) -> str | None:
    """The run's phases as bars on a time axis (one row per run)."""
    if not any(view.phases for _, view in runs):
        return None
    from matplotlib.patches import Patch

    names = _union([[p.name for p in view.phases] for _, view in runs])
    colors = {name: f"C{index % 10}" for index, name in enumerate(names)}
    with _figure(1, 12, height=0.9 + 0.4 * len(runs)) as (fig, axes):
        ax = axes[0]
        for row, (_, view) in enumerate(runs):
            for phase in view.phases:
                bar = [(phase.start_s, max(phase.duration_s, 1e-9))]
                ax.broken_barh(bar, (row - 0.35, 0.7), color=colors[phase.name])
        ax.set_yticks(range(len(runs)), [label for label, _ in runs])
        ax.set_xlabel("seconds from the run's start (blank: plugin hooks and set-up)")
        handles = [Patch(color=colors[name], label=name) for name in names]
        ax.legend(
            handles=handles,
            fontsize=7,
            ncol=len(names),
            loc="lower left",
            bbox_to_anchor=(0, 1.02),
            frameon=False,
        )
        return _svg(fig, "timeline")


# --------------------------------------------------------------------------- helpers


@contextmanager
def _figure(rows: int, points: int, height: float | None = None) -> Iterator[tuple[Any, Any]]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt

    matplotlib.rcParams.update({"svg.fonttype": "none", "font.size": 8})
    width = min(12.0, max(6.0, 0.12 * points))
    fig, axes = plt.subplots(
        rows, 1, figsize=(width, height or 2.2 * rows), sharex=rows > 1, squeeze=False
    )
    try:
        yield fig, [ax for (ax,) in axes]
    finally:
        plt.close(fig)


def _svg(fig: Any, name: str) -> str:
    import matplotlib

    fig.tight_layout()
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": name}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # drop the XML declaration and doctype
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    return text.replace("<svg ", f'<svg class="plot" id="plot-{name}" role="img" ', 1)


def _layer_ticks(ax: Any, names: list[str]) -> None:
    if len(names) <= _NAMED_TICKS:
        ax.set_xticks(range(len(names)), names, rotation=70, ha="right", fontsize=6)
    else:
        ax.set_xlabel(f"layer index, model order ({len(names)} layers)")


def _legend(ax: Any, runs: Sequence[Run]) -> None:
    if len(runs) > 1:
        ax.legend(fontsize=7, loc="best")


def _union(orders: list[list[str]]) -> list[str]:
    """Names in the first run's order, then any the others add."""
    seen: dict[str, None] = {}
    for order in orders:
        for name in order:
            seen.setdefault(name, None)
    return list(seen)


def _val(value: float | None) -> float:
    return math.nan if value is None else value


def _zero(values: list[float]) -> list[float]:
    return [0.0 if math.isnan(v) else v for v in values]


def _pct(value: float | None) -> float:
    return math.nan if value is None else value * 100
