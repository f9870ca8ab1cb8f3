"""RTN quantization speed and memory: memory roofline vs textbook torch vs invarlock.

Builds a GPT-2-small-shaped model (12 layers, 768 wide, ``Conv1D``) and a LLaMA-shaped model of
similar size (8 layers, 1024 wide, MLP 2560, grouped-query attention) from configs: random
float32 weights, no downloads. The timed work is the transformer-block weights the default
quant_rtn scope selects (about 340 MB each), with one thread.

Methods, each over the same weights:

* ``roofline``: ``w.mul_(1.0)``, one in-place read+write pass, the memory-bandwidth floor;
* ``naive``: the obvious code, ``scale = w.abs().amax(dim)/qmax;
  w.copy_((w/scale).round().clamp(-qmax, qmax)*scale)`` (grouped: the same on a reshaped view);
* ``invarlock``: ``get_edit("quant_rtn").apply(model, config)``, stats off and on.

Timing: median of ``--repeats`` runs in this process; before each run the weights are restored
with an untimed copy and the last-level cache is flushed by writing a 512 MiB buffer.
Memory: each method also runs once in a fresh subprocess that builds the model, resets the
peak-RSS counter (``/proc/self/clear_refs``), runs the method and reports ``VmHWM - VmRSS``
before the run: the peak extra memory. That subprocess time is also the cold first call
(lazy imports included), what a CLI user sees.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_rtn.py [--repeats 7] [--no-memory]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

torch.set_num_threads(1)

MODELS = ("gpt2-small", "llama-340m")
#: (label, quant_rtn parameters) of the rows that compare naive and invarlock.
SCHEMES = {
    "int8 channel": {"bits": 8},
    "int4 group128": {"bits": 4, "group_size": 128},
}


def build_model(name: str) -> torch.nn.Module:
    """Random float32 model; small vocabulary (it is outside the timed scope anyway)."""
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    torch.manual_seed(0)
    if name == "gpt2-small":
        config = GPT2Config(n_layer=12, n_embd=768, n_head=12, vocab_size=1024, n_positions=1024)
    else:
        config = LlamaConfig(
            num_hidden_layers=8,
            hidden_size=1024,
            intermediate_size=2560,
            num_attention_heads=16,
            num_key_value_heads=8,
            vocab_size=1024,
        )
    return AutoModelForCausalLM.from_config(config).eval()


def block_weights(model: torch.nn.Module) -> list[tuple[torch.Tensor, int]]:
    """The default quant_rtn targets: ``(weight, out_axis)``."""
    from invarlock.edits.rtn import QuantRTN
    from invarlock.edits.scope import select_targets

    config = QuantRTN().parse({})
    return [(t.weight.detach(), t.out_axis) for t in select_targets(model, config).targets]


def naive_(weights: list[tuple[torch.Tensor, int]], bits: int, group: int | None) -> None:
    """Textbook symmetric RTN, per channel or per group of ``group`` inputs."""
    qmax = 2 ** (bits - 1) - 1
    with torch.no_grad():
        for weight, out_axis in weights:
            w = weight if out_axis == 0 else weight.t()  # (out, in) view
            if group is None:
                scale = w.abs().amax(dim=1, keepdim=True) / qmax
                w.copy_((w / scale).round().clamp(-qmax, qmax) * scale)
            else:
                g = w.unflatten(1, (w.shape[1] // group, group))
                scale = g.abs().amax(dim=2, keepdim=True) / qmax
                g.copy_((g / scale).round().clamp(-qmax, qmax) * scale)


def methods(model: torch.nn.Module) -> dict[str, Callable[[], None]]:
    """Method name -> a call that processes the model's block weights once, in place."""
    from invarlock.edits import get_edit

    weights = block_weights(model)
    edit = get_edit("quant_rtn")

    def roofline() -> None:
        for weight, _ in weights:
            weight.mul_(1.0)

    def naive(params: dict) -> Callable[[], None]:
        return lambda: naive_(weights, params["bits"], params.get("group_size"))

    def invarlock(params: dict) -> Callable[[], None]:
        config = edit.parse(params)
        return lambda: edit.apply(model, config)

    table = {"roofline": roofline}
    for label, params in SCHEMES.items():
        table[f"naive {label}"] = naive(params)
        table[f"invarlock {label}"] = invarlock({**params, "stats": False})
        if label == "int8 channel":
            table[f"invarlock {label} +stats"] = invarlock({**params, "stats": True})
    return table


def rss_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(model_name: str, method: str) -> None:
    """Subprocess: build, reset the peak counter, run ``method`` once, print JSON."""
    model = build_model(model_name)
    run = methods(model)[method]
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")  # reset VmHWM to the current RSS
    before = rss_kib("VmRSS")
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    print(json.dumps({"extra_mib": (rss_kib("VmHWM") - before) / 1024, "cold_ms": seconds * 1e3}))


def measure_in_child(model_name: str, method: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", model_name, method],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_warm(model: torch.nn.Module, run: Callable[[], None], repeats: int) -> float:
    weights = block_weights(model)
    originals = [w.clone() for w, _ in weights]
    flush = torch.empty(512 * 1024 * 1024 // 4)
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            for (weight, _), original in zip(weights, originals, strict=True):
                weight.copy_(original)
            flush.fill_(1.0)
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        for (weight, _), original in zip(weights, originals, strict=True):
            weight.copy_(original)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-memory", action="store_true", help="skip the subprocess runs")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.repeats} repeats")
    header = (
        f"{'model':<11} {'method':<28} {'ms':>7} {'GB/s':>6} {'x roof':>7} {'vs naive':>8}"
        f" {'cold ms':>8} {'extra MiB':>9}"
    )
    print(header)
    print("-" * len(header))
    for model_name in MODELS:
        model = build_model(model_name)
        size = sum(w.numel() * w.element_size() for w, _ in block_weights(model))
        table = methods(model)
        warm = {name: time_warm(model, run, args.repeats) for name, run in table.items()}
        for name, ms in warm.items():
            naive = warm.get(name.replace("invarlock", "naive").removesuffix(" +stats"))
            speedup = f"{naive / ms:7.1f}x" if name.startswith("invarlock") and naive else ""
            cold = extra = ""
            if not args.no_memory:
                measured = measure_in_child(model_name, name)
                cold, extra = f"{measured['cold_ms']:8.0f}", f"{measured['extra_mib']:9.1f}"
            print(
                f"{model_name:<11} {name:<28} {ms:7.1f} {2 * size / ms / 1e6:6.1f}"
                f" {ms / warm['roofline']:7.2f} {speedup:>8} {cold:>8} {extra:>9}"
            )
        print(f"{model_name}: {size / 1e6:.0f} MB of block weights (GB/s counts read + write)")
        del model


if __name__ == "__main__":
    main()
