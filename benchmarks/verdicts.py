"""The verdict table: every built-in guard's action next to the paired perplexity ratio.

Loads the default model once, then for each seed (which windows are sampled and, for the
planted faults, which layer, head or row is hit) prepares the guard chain on calibration
windows of the bundled corpus, and for every edit: applies it, validates every guard,
evaluates the paired perplexity ratio on held-out windows, and restores the model
bit-exactly from a snapshot. Edits:

* benign: no-op, int8 per channel, int8 groups of 128;
* graded: int4 g128 asymmetric and symmetric, int3 g128 asymmetric, int2 per channel;
* planted faults: one weight ×10, one attention head zeroed, one weight's rows permuted,
  one row's sign flipped, one NaN.

Writes docs/verdicts.md (the table and the issue's targets, checked) and a JSON record of
every run. Regenerate with::

    OMP_NUM_THREADS=1 python benchmarks/verdicts.py

``--model`` takes any model id the HF adapter loads (default: the embedded default model).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from invarlock.core.jsonsafe import json_safe
from invarlock.data.corpus import corpus_text
from invarlock.edits import get_edit
from invarlock.evaluation.perplexity import PerplexityEvaluator
from invarlock.evaluation.stats import ratio_interval
from invarlock.guards import BUILTIN_GUARDS
from invarlock.guards.scope import resolve_scope
from invarlock.runner.snapshot import Snapshot

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "smollm2-135m"
GUARD_NAMES = [cls.name for cls in BUILTIN_GUARDS]


@dataclass
class Case:
    """One edit of the table."""

    name: str
    kind: str  # benign | graded | fault
    #: The guard meant to catch a planted fault.
    meant_for: str | None = None
    rtn: dict[str, Any] | None = None
    fault: Callable[[torch.nn.Module, random.Random], str] | None = None


def _weights(model: torch.nn.Module) -> list[str]:
    return [w.name for w in resolve_scope(model, (), ()).weights]


def scale_weight(model: torch.nn.Module, rng: random.Random) -> str:
    name = rng.choice(_weights(model))
    with torch.no_grad():
        model.get_parameter(name).mul_(10.0)
    return name


def zero_head(model: torch.nn.Module, rng: random.Random) -> str:
    """Zero one head's slice of the input columns of one layer's attention output projection."""
    layers = [n for n in _weights(model) if n.endswith(("o_proj.weight", "attn.c_proj.weight"))]
    name = rng.choice(layers)
    heads = model.config.num_attention_heads
    weight = model.get_parameter(name)
    width = weight.shape[1] // heads
    head = rng.randrange(heads)
    with torch.no_grad():
        weight[:, head * width : (head + 1) * width] = 0.0
    return f"{name} head {head}"


def permute_rows(model: torch.nn.Module, rng: random.Random) -> str:
    name = rng.choice(_weights(model))
    weight = model.get_parameter(name)
    generator = torch.Generator().manual_seed(rng.randrange(2**31))
    order = torch.randperm(weight.shape[0], generator=generator)
    with torch.no_grad():
        weight.copy_(weight[order].clone())
    return name


def flip_row(model: torch.nn.Module, rng: random.Random) -> str:
    name = rng.choice(_weights(model))
    weight = model.get_parameter(name)
    row = rng.randrange(weight.shape[0])
    with torch.no_grad():
        weight[row].neg_()
    return f"{name} row {row}"


def plant_nan(model: torch.nn.Module, rng: random.Random) -> str:
    name = rng.choice(_weights(model))
    weight = model.get_parameter(name)
    row, column = rng.randrange(weight.shape[0]), rng.randrange(weight.shape[1])
    with torch.no_grad():
        weight[row, column] = float("nan")
    return f"{name}[{row}, {column}]"


CASES = [
    Case("noop", "benign"),
    Case("int8 per-channel", "benign", rtn={"bits": 8}),
    Case("int8 g128", "benign", rtn={"bits": 8, "group_size": 128}),
    Case("int4 g128 asym", "graded", rtn={"bits": 4, "group_size": 128, "symmetric": False}),
    Case("int4 g128 sym", "graded", rtn={"bits": 4, "group_size": 128}),
    Case("int3 g128 asym", "graded", rtn={"bits": 3, "group_size": 128, "symmetric": False}),
    Case("int2 per-channel", "graded", rtn={"bits": 2}),
    Case("weight ×10", "fault", "spectral", fault=scale_weight),
    Case("head zeroed", "fault", "variance", fault=zero_head),
    Case("rows permuted", "fault", "variance", fault=permute_rows),
    Case("row sign flipped", "fault", "variance", fault=flip_row),
    Case("NaN in one weight", "fault", "invariants", fault=plant_nan),
]


# --------------------------------------------------------------------------- model and data


def load_model(model_id: str) -> tuple[torch.nn.Module, Any, Any]:
    """The model (float32, CPU, eval mode), its tokenizer and its adapter."""
    from invarlock.adapters.hf_causal import HF_Causal_Adapter

    adapter = HF_Causal_Adapter()
    model = adapter.load_model(model_id, device="cpu")
    return model.float().eval(), adapter.load_tokenizer(model_id), adapter


def corpus_windows(tokenizer: Any, name: str, seq_len: int) -> torch.Tensor:
    """All non-overlapping ``seq_len`` windows of the bundled text ``name``."""
    ids = tokenizer(corpus_text(name), return_tensors="pt")["input_ids"][0]
    count = ids.numel() // seq_len
    return ids[: count * seq_len].view(count, seq_len)


def sample(windows: torch.Tensor, count: int, rng: random.Random) -> torch.Tensor:
    return windows[sorted(rng.sample(range(windows.shape[0]), count))]


def window_nll(model: torch.nn.Module, windows: torch.Tensor, batch: int = 4) -> list[float]:
    """Each window's mean next-token NLL, by the built-in ``perplexity`` evaluator."""
    evaluator = PerplexityEvaluator()
    values: list[float] = []
    with torch.inference_mode():
        for start in range(0, windows.shape[0], batch):
            values += evaluator.window_losses(model, windows[start : start + batch]).tolist()
    return values


def paired_ratio(base: list[float], edited: list[float], confidence: float) -> dict[str, float]:
    """The paired evaluation's perplexity ratio and bootstrap interval (as the runner's gate)."""
    if not all(math.isfinite(v) for v in edited):
        return {"point": math.inf, "lower": math.inf, "upper": math.inf}
    found = ratio_interval(list(zip(base, edited, strict=True)), confidence, seed=0)
    return {"point": found.point, "lower": found.lower, "upper": found.upper}


# --------------------------------------------------------------------------- one seed


@dataclass
class Record:
    seed: int
    case: str
    kind: str
    meant_for: str | None
    target: str
    ratio: dict[str, float]
    gate_passed: bool
    actions: dict[str, str]
    messages: dict[str, str]
    metrics: dict[str, Any] = field(default_factory=dict)
    validate_s: float = 0.0

    @property
    def chain_rolls_back(self) -> bool:
        return "abort" in self.actions.values()


def headline(name: str, out: dict[str, Any]) -> dict[str, Any]:
    """The few numbers of a guard result the calibration needs."""
    metrics = out.get("metrics", {})
    if name == "spectral":
        return {
            "max_rel_change": metrics.get("max_rel_change"),
            "max_z": metrics.get("max_z"),
            "families": {f["family"]: f["max_rel_change"] for f in metrics.get("families", [])},
        }
    if name == "rmt":
        families = metrics.get("families", [])
        return {f["family"]: [f["before"], f["after"], f["changed_fraction"]] for f in families}
    if name == "variance":
        activations = metrics.get("activations", {})
        return {
            "max_ratio_change": metrics.get("max_ratio_change"),
            "max_mean_shift": metrics.get("max_mean_shift"),
            "max_activation_change": activations.get("max_agreed_change"),
        }
    return {}


def run_seed(
    model: torch.nn.Module,
    adapter: Any,
    snapshot: Snapshot,
    calib_pool: torch.Tensor,
    eval_pool: torch.Tensor,
    args: argparse.Namespace,
    seed: int,
) -> tuple[list[Record], dict[str, float]]:
    rng = random.Random(seed)
    calib = [sample(calib_pool, args.calib_windows, rng)]
    evaluation = sample(eval_pool, args.eval_windows, rng)
    baseline = window_nll(model, evaluation)
    timing: dict[str, float] = {}
    guards = [cls(tier=args.tier) if cls.name != "invariants" else cls() for cls in BUILTIN_GUARDS]
    for guard in guards:
        started = time.perf_counter()
        prepared = guard.prepare(model, adapter, calib, None)
        timing[f"{guard.name} prepare"] = time.perf_counter() - started
        if not prepared.get("ready", True):
            raise SystemExit(f"{guard.name} not ready: {prepared.get('message')}")
    records = []
    for case in CASES:
        fault_rng = random.Random(f"{seed}:{case.name}")
        context: dict[str, Any] = {}
        target = ""
        if case.rtn is not None:
            edit = get_edit("quant_rtn")
            context["edit"] = edit.apply(model, edit.parse(case.rtn)).summary()
            target = "block weights"
        elif case.fault is not None:
            target = case.fault(model, fault_rng)
        actions, messages, metrics = {}, {}, {}
        started = time.perf_counter()
        for guard in guards:
            try:
                out = guard.validate(model, adapter, context)
            except Exception as exc:  # a guard that raises is an abort (as in the runner)
                out = {"action": "abort", "message": f"raised {type(exc).__name__}: {exc}"}
            actions[guard.name] = out["action"]
            messages[guard.name] = out["message"]
            metrics[guard.name] = headline(guard.name, out)
        validate_s = time.perf_counter() - started
        ratio = paired_ratio(baseline, window_nll(model, evaluation), args.confidence)
        gate_value = ratio["upper"] if args.gate_on == "upper" else ratio["point"]
        record = Record(
            seed,
            case.name,
            case.kind,
            case.meant_for,
            target,
            ratio,
            gate_value <= args.max_ppl_ratio,
            actions,
            messages,
            metrics,
            validate_s,
        )
        records.append(record)
        snapshot.restore(model)
        print(
            f"seed {seed} {case.name:<18} ppl ×{ratio['point']:.4g} "
            f"[{ratio['lower']:.4g}, {ratio['upper']:.4g}] gate "
            f"{'pass' if record.gate_passed else 'FAIL'}  "
            + "  ".join(f"{g}={a}" for g, a in actions.items()),
            flush=True,
        )
    return records, timing


# --------------------------------------------------------------------------- the report


def _count(records: list[Record], predicate: Callable[[Record], bool]) -> str:
    return f"{sum(predicate(r) for r in records)}/{len(records)}"


def _actions(records: list[Record], guard: str) -> str:
    found: dict[str, int] = {}
    for record in records:
        found[record.actions[guard]] = found.get(record.actions[guard], 0) + 1
    order = ("abort", "warn", "continue")
    return ", ".join(f"{a} {found[a]}" for a in order if a in found)


def _ratio_range(records: list[Record]) -> str:
    points = [r.ratio["point"] for r in records]
    if not all(math.isfinite(p) for p in points):
        return "non-finite"
    low, high = min(points), max(points)
    return f"×{low:.4g}" if math.isclose(low, high, rel_tol=5e-4) else f"×{low:.4g} – ×{high:.4g}"


def render(records: list[Record], args: argparse.Namespace, info: dict[str, Any]) -> str:
    by_case = {case.name: [r for r in records if r.case == case.name] for case in CASES}
    seeds = len({r.seed for r in records})
    lines = [
        "# Guard verdicts on the default model",
        "",
        "<!-- generated by benchmarks/verdicts.py; do not edit by hand -->",
        "",
        "Generated by `benchmarks/verdicts.py`; regenerate with:",
        "",
        "<!-- docs-test: skip: takes minutes and loads the default model -->",
        "```bash",
        f"OMP_NUM_THREADS=1 python benchmarks/verdicts.py {info['argv']}".rstrip(),
        "```",
        "",
        f"Model `{args.model}` ({info['parameters'] / 1e6:.0f} M parameters, float32, CPU), tier "
        f"`{args.tier}`, {seeds} seeds. Per seed: {args.calib_windows} calibration windows of "
        f"{args.seq_len} tokens from `northanger_abbey` (guards' `calib`), {args.eval_windows} "
        f"held-out windows of {args.seq_len} tokens from `persuasion` for the paired "
        f"perplexity ratio (edited vs unedited on the same windows, {args.confidence:.0%} "
        f"bootstrap interval of `invarlock.evaluation`); gate: {args.gate_on} bound ≤ "
        f"{args.max_ppl_ratio}. The seed also picks the layer, head, row or element a planted "
        "fault hits. Each cell counts the guard's actions over the seeds; the chain rolls "
        "back when any guard aborts.",
        "",
        "| kind | edit | perplexity ratio | gate fails | "
        + " | ".join(GUARD_NAMES)
        + " | chain rolls back |",
        "|---|---|---|---|" + "---|" * len(GUARD_NAMES) + "---|",
    ]
    for case in CASES:
        group = by_case[case.name]
        cells = [_actions(group, g) for g in GUARD_NAMES]
        lines.append(
            f"| {case.kind} | {case.name} | {_ratio_range(group)} | "
            f"{_count(group, lambda r: not r.gate_passed)} | "
            + " | ".join(cells)
            + f" | {_count(group, lambda r: r.chain_rolls_back)} |"
        )
    benign = [r for r in records if r.kind == "benign"]
    graded = [r for r in records if r.kind == "graded"]
    agree = sum(r.chain_rolls_back == (not r.gate_passed) for r in graded)
    alarms = sum(r.chain_rolls_back for r in benign)
    warns = sum(("warn" in r.actions.values()) and not r.chain_rolls_back for r in benign)
    caught = {
        case.name: sum(r.actions[case.meant_for] == "abort" for r in by_case[case.name])
        for case in CASES
        if case.kind == "fault"
    }

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    agreement = agree / len(graded) if graded else 0.0
    alarm_rate = alarms / len(benign) if benign else 0.0
    lines += [
        "",
        f"## Targets at tier `{args.tier}`",
        "",
        "| target | measured | |",
        "|---|---|---|",
    ]
    for case in CASES:
        if case.kind == "fault":
            n = len(by_case[case.name])
            lines.append(
                f"| {case.name}: caught (abort) by `{case.meant_for}` | {caught[case.name]}/{n} "
                f"| {verdict(caught[case.name] == n)} |"
            )
    lines += [
        f"| chain agrees with the gate on graded edits ≥ 95 % | {agree}/{len(graded)} "
        f"({agreement:.0%}) | {verdict(agreement >= 0.95)} |",
        f"| false alarms (rollback) on benign edits ≤ 5 % | {alarms}/{len(benign)} "
        f"({alarm_rate:.0%}); warnings without rollback: {warns} | {verdict(alarm_rate <= 0.05)} |",
        "",
        "## Where the guards and the gate disagree",
        "",
    ]
    disagreements = [r for r in records if r.chain_rolls_back == r.gate_passed]
    if not disagreements:
        lines.append("Nowhere: on every edit and seed the chain and the gate decided alike.")
    for r in disagreements:
        who = ", ".join(g for g, a in r.actions.items() if a == "abort") or "no guard"
        side = (
            f"guards catch what the gate misses ({who} aborts)"
            if r.chain_rolls_back
            else "the gate catches what the guards miss"
        )
        lines.append(
            f"- seed {r.seed}, {r.case} ({r.target}): perplexity ×{r.ratio['point']:.4g} "
            f"[{r.ratio['lower']:.4g}, {r.ratio['upper']:.4g}]; {side}."
        )
    lines += [
        "",
        "## Guard cost in this run",
        "",
        "Mean seconds per seed (prepare) and per edit (all four validations):",
        "",
        "| | seconds |",
        "|---|---|",
    ]
    for key, value in info["timing"].items():
        lines.append(f"| {key} | {value:.2f} |")
    lines.append(
        f"| validate, all guards | {statistics.fmean(r.validate_s for r in records):.2f} |"
    )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model id (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tier", default="balanced")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--calib-windows", type=int, default=4)
    parser.add_argument("--eval-windows", type=int, default=8)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--max-ppl-ratio", type=float, default=1.10)
    parser.add_argument("--gate-on", choices=("upper", "point"), default="upper")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "verdicts.md")
    parser.add_argument("--json", type=Path, default=None, help="also write every record here")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    started = time.perf_counter()
    model, tokenizer, adapter = load_model(args.model)
    print(f"loaded {args.model} in {time.perf_counter() - started:.1f} s", flush=True)
    calib_pool = corpus_windows(tokenizer, "northanger_abbey", args.seq_len)
    eval_pool = corpus_windows(tokenizer, "persuasion", args.seq_len)
    snapshot = Snapshot.take(model, _weights(model), mode="memory")
    records: list[Record] = []
    timings: list[dict[str, float]] = []
    for seed in range(args.seeds):
        found, timing = run_seed(model, adapter, snapshot, calib_pool, eval_pool, args, seed)
        records += found
        timings.append(timing)
    info = {
        "argv": " ".join(sys.argv[1:] if argv is None else argv),
        "parameters": sum(p.numel() for p in model.parameters()),
        "timing": {key: statistics.fmean(t[key] for t in timings) for key in timings[0]},
    }
    text = render(records, args, info)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".md.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(args.out)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(json_safe([r.__dict__ for r in records]), indent=1), encoding="utf-8"
        )
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
