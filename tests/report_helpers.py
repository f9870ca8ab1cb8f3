"""Real runs of every outcome on the tiny GPT-2, made once per test session, and the report
sections other streams write, shaped as CONTRACTS.md fixes them."""

from __future__ import annotations

import copy
import math
from importlib import resources
from pathlib import Path
from typing import Any

from capture_guard import CAPTURE_GUARD

from invarlock.testing.project import Project, RunOutcome

CONFIG = """
model: {{id: {model}, device: cpu}}
edit: {{name: quant_rtn, bits: {bits}}}
guards:
  order: {order}
output: {{dir: runs, run_name: {name}}}
"""
CORPUS = resources.files("invarlock.testing").joinpath("data", "corpus.txt")
EVALUATION = f"""
dataset: {{{{source: text, path: {CORPUS}, seq_len: 32, eval_windows: 12, calib_windows: 2}}}}
eval: {{{{baseline_cache: false, max_ppl_ratio: {{gate}}, early_stop: {{early}}}}}}
"""
DEFAULT_ORDER = "[invariants, spectral, variance]"
INTERRUPT = CAPTURE_GUARD + (
    "\ndef _interrupt(self, model, adapter, context):\n    raise KeyboardInterrupt\n"
    "Capture.validate = _interrupt\n"
)
WARN = CAPTURE_GUARD + (
    '\nCapture.RESULT = {"passed": True, "action": "warn", "message": "worth a look"}\n'
)
HOOK_RAISES = CAPTURE_GUARD + (
    "\n@hookimpl\ndef invarlock_edit_applied(run, result):\n"
    "    raise RuntimeError('disk on fire')\n"
)

#: name → (bits, guard order, local plugin source, config extra, expected status)
RUNS: dict[str, tuple[int, str, str | None, str, str]] = {
    "kept": (8, DEFAULT_ORDER, None, "", "kept"),
    # A guard of our own warns: the built-ins' thresholds are tuned by another stream.
    "warned": (8, "[invariants, spectral, variance, capture]", WARN, "", "warned"),
    "rolled_back": (3, DEFAULT_ORDER, None, "", "rolled_back"),
    "interrupted": (8, "[invariants, capture]", INTERRUPT, "", "interrupted"),
    "failed": (8, "[invariants, capture]", HOOK_RAISES, "", "error"),
    # The evaluation stream's real section: kept with early stopping; rolled back by the gate.
    "evaluated": (8, "[invariants]", None, EVALUATION.format(gate=1.5, early="true"), "kept"),
    "gate": (4, "[invariants]", None, EVALUATION.format(gate=1.0001, early="false"), "rolled_back"),
}
_CACHE: dict[str, RunOutcome] = {}


def real_run(name: str, base: Path, model: Path) -> RunOutcome:
    """The run ``name`` (see :data:`RUNS`) in a project under ``base``, once per session."""
    if name not in _CACHE:
        bits, order, plugins, extra, _ = RUNS[name]
        project = Project(base / name, model_dir=model)
        project.write_config(CONFIG.format(model=model, bits=bits, order=order, name=name) + extra)
        if plugins is not None:
            project.write_plugins(plugins)
        _CACHE[name] = project.run()
    return _CACHE[name]


def with_contract_sections(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` plus ``evaluation``, ``integrity``, ``exports`` and an RMT guard's
    ``metrics.layers``, in the shapes CONTRACTS.md gives (for the streams not merged here)."""
    data = copy.deepcopy(report)
    params = [layer["param"] for layer in data["edit"]["layers"]]
    pairs = [
        [3.2 + 0.05 * math.sin(i), 3.2 + 0.05 * math.sin(i) + 0.004 * (1 + i % 3)] for i in range(9)
    ]
    deltas = [e - b for b, e in pairs]
    mean = sum(deltas) / len(deltas)
    base_nll = sum(b for b, _ in pairs) / len(pairs)
    data["evaluation"] = {
        "metric": "perplexity",
        "dataset": {
            "source": "bundled",
            "seq_len": 256,
            "stride": None,
            "seed": 0,
            "counts": {"eval_windows": 12, "calib_windows": 8},
            "fingerprint": "sha256:" + "ab" * 32,
        },
        "windows_planned": 12,
        "windows_used": len(pairs),
        "tokens_evaluated": 256 * len(pairs),
        "tokens_saved": 256 * 3,
        "baseline": {"ppl": math.exp(base_nll), "mean_nll": base_nll, "cached": False},
        "edited": {"ppl": math.exp(base_nll + mean), "mean_nll": base_nll + mean},
        "ratio": {
            "point": math.exp(mean),
            "lower": math.exp(mean - 0.002),
            "upper": math.exp(mean + 0.002),
            "confidence": 0.95,
            "method": "paired bootstrap",
            "seed": 0,
        },
        "sequence": {
            "lower": math.exp(mean - 0.004),
            "upper": math.exp(mean + 0.004),
            "method": "e-process",
        },
        "early_stop": {
            "enabled": True,
            "stopped_at": len(pairs),
            "reason": "upper bound below the gate",
        },
        "gate": {"max_ppl_ratio": 1.10, "gate_on": "upper", "passed": True},
        "pairs": pairs,
        "duration_s": 1.5,
    }
    data["integrity"] = {
        "algorithm": "sha256",
        "tensors": 41,
        "bytes": 796928,
        "digest_at_load": "cd" * 32,
        "checks": [{"phase": "prepare", "ok": True, "changed": [], "plugin": None}],
        "restored": None,
        "verified": None,
        "unrestorable": [],
    }
    data["exports"] = [
        {
            "format": "gguf",
            "path": str(Path(data["run_dir"]) / "model.gguf"),
            "files": [{"name": "model.gguf", "bytes": 123456, "sha256": "ef" * 32}],
            "proof": {
                "loader": "gguf",
                "bit_equal": True,
                "max_abs_weight_diff": 0.0,
                "max_abs_logit_diff": None,
            },
        }
    ]
    data["guards"].append(
        {
            "guard": "rmt",
            "phase": "validate",
            "passed": True,
            "action": "continue",
            "message": "no new outliers",
            "metrics": {
                "layers": [
                    {
                        "name": name,
                        "family": "attn" if ".attn." in name else "mlp",
                        "before": 2.0 + index / 10,
                        "after": 2.0 + index / 10 + 0.01,
                        "outliers_before": index % 2,
                        "outliers_after": index % 2,
                    }
                    for index, name in enumerate(params)
                ]
            },
            "warnings": [],
            "duration_s": 0.01,
            "origin": "builtin",
            "options": {},
        }
    )
    return data
