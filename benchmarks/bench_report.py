"""What writing the reports costs next to the run itself, side by side in one process.

Builds a LLaMA with SmolLM2-135M's layer count (30 blocks, 210 quantized weights) but tiny
widths, runs the real pipeline once (int8, default guards, ``output.html: false``), then
times, on that run's report: report.json (dump + atomic write), Markdown, the HTML page
without plots, and the HTML page with plots (the first call, with matplotlib's import, and
the median of the repeats). Ratios are to the run's own duration.

    OMP_NUM_THREADS=1 python benchmarks/bench_report.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def build_model(out: Path) -> Path:
    import torch
    from transformers import LlamaForCausalLM

    from invarlock.testing.models import tiny_config, train_tokenizer

    tokenizer = train_tokenizer("llama")
    config = tiny_config("llama", tokenizer, num_hidden_layers=30)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def run_pipeline(model: Path, workdir: Path) -> tuple[dict, float]:
    from invarlock.plugins import PluginManager, Selection
    from invarlock.runner.config import parse_config
    from invarlock.runner.runner import Runner

    config = parse_config(
        f"model: {{id: {model}, device: cpu}}\nedit: {{name: quant_rtn, bits: 8}}\n"
        f"output: {{dir: {workdir / 'runs'}, html: false}}\n"
    )
    manager = PluginManager(Selection.build(env={}, local_start=workdir)).load()
    started = time.perf_counter()
    report = Runner(config, manager).execute()
    return report.to_dict(), time.perf_counter() - started


def timed(action: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """(first call s, median of ``repeats`` further calls s, last result)."""
    started = time.perf_counter()
    result = action()
    first = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return first, statistics.median(times), result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from invarlock.core.atomic import write_json_atomic
    from invarlock.reports import plots
    from invarlock.reports.html import render_html
    from invarlock.reports.markdown import render_markdown
    from invarlock.reports.view import build_view

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model = build_model(workdir / "model")
        data, run_s = run_pipeline(model, workdir)
        source = Path(data["run_dir"]) / "report.json"
        view = build_view(data, source)
        available = plots.plots_available

        def html_without_plots() -> str:
            plots.plots_available = lambda: False  # the page as it is without the extra
            try:
                return render_html(view)
            finally:
                plots.plots_available = available

        rows = [
            ("report.json", lambda: write_json_atomic(workdir / "r.json", data)),
            ("markdown", lambda: render_markdown(view)),
            ("html, no plots", html_without_plots),
            ("html + plots", lambda: render_html(view)),
        ]
        print(f"model: 30 blocks, {len(view.layers)} quantized weights; run {run_s:.2f} s")
        print(f"{'output':<16}{'first s':>9}{'median s':>10}{'x run':>8}{'KiB':>8}")
        for name, action in rows:
            first, median, result = timed(action, args.repeats)
            size = len(result.encode()) if isinstance(result, str) else source.stat().st_size
            print(
                f"{name:<16}{first:>9.3f}{median:>10.3f}{median / run_s:>8.3f}{size / 1024:>8.1f}"
            )
        json.dumps(data)  # the report is JSON-clean
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
