"""The paired evaluation inside real runs on a tiny GPT-2: report section, calib reaching the
guards, the gate rolling back bit-exactly, early stopping, evaluator plugins."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import pytest

from invarlock.evaluation.stats import ratio_interval
from invarlock.testing import load_model, weight_bits

CORPUS = str(resources.files("invarlock.testing").joinpath("data", "corpus.txt"))


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("INVARLOCK_CACHE_DIR", str(cache))
    return cache


def config(model_dir: Path, bits: int = 8, extra: str = "", eval_extra: str = "") -> str:
    return f"""
    model:
      id: {model_dir}
      device: cpu
    edit:
      name: quant_rtn
      bits: {bits}
    guards:
      order: [invariants, recorder]
    dataset:
      source: text
      path: {CORPUS}
      seq_len: 32
      eval_windows: 16
      calib_windows: 6
      seed: 3
    {extra}
    eval:
      batch_size: 4
      {eval_extra}
    """


RECORDER = '''
import hashlib

from invarlock import hookimpl
from invarlock.evaluation import Evaluator
from invarlock.core.api import Guard

SEEN = {}


def state_hash(model):
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().view(-1).view(__import__("torch").uint8).numpy())
    return digest.hexdigest()


class Recorder(Guard):
    """Keeps what prepare() received and hashes the whole state dict before the edit."""

    name = "recorder"

    def prepare(self, model, adapter, calib, policy):
        SEEN.update(model=model, calib=calib, before=state_hash(model))
        return {"ready": True}

    def validate(self, model, adapter, context):
        return {"passed": True, "action": "continue", "message": "ok"}


class TailNLL(Evaluator):
    """Mean NLL of the second half of each window's tokens (a second metric)."""

    name = "tail_nll"
    version = "1"

    def window_losses(self, model, input_ids):
        import torch.nn.functional as F

        logits = model(input_ids=input_ids).logits[:, :-1].float()
        nll = F.cross_entropy(logits.transpose(1, 2), input_ids[:, 1:], reduction="none")
        return nll[:, nll.shape[1] // 2 :].mean(dim=1)


@hookimpl
def invarlock_register_guards(register):
    register(Recorder)


@hookimpl
def invarlock_register_evaluators(register):
    register(TailNLL)
'''


def run(invarlock_project, text: str, *args: str):
    """``invarlock run`` with the recorder plugin, in a fresh project."""
    return invarlock_project(text, RECORDER).run(*args)


def test_a_kept_run_reports_the_paired_evaluation(
    invarlock_project, tiny_gpt2_dir: Path, private_cache: Path
) -> None:
    outcome = run(invarlock_project, config(tiny_gpt2_dir)).assert_status("kept", 0)
    report = outcome.report
    ev = report["evaluation"]
    assert ev["metric"] == "perplexity"
    assert ev["windows_planned"] == 16 and ev["dataset"]["counts"] == {"eval": 16, "calib": 6}
    assert ev["dataset"]["source"] == "text" and ev["dataset"]["seq_len"] == 32
    assert len(ev["pairs"]) == ev["windows_used"] <= 16
    assert ev["tokens_saved"] == (16 - ev["windows_used"]) * 32
    base = [b for b, _ in ev["pairs"]]
    edited = [e for _, e in ev["pairs"]]
    assert ev["baseline"]["ppl"] == pytest.approx(math.exp(sum(base) / len(base)))
    assert ev["edited"]["ppl"] == pytest.approx(math.exp(sum(edited) / len(edited)))
    assert ev["baseline"]["cached"] is False
    # the interval is recomputable from the pairs and the seed
    ratio = ratio_interval(
        ev["pairs"], ev["ratio"]["confidence"], ev["ratio"]["seed"], ev["ratio"]["resamples"]
    )
    assert (ratio.point, ratio.lower, ratio.upper) == pytest.approx(
        (ev["ratio"]["point"], ev["ratio"]["lower"], ev["ratio"]["upper"]), rel=1e-12
    )
    assert ev["gate"] == {"max_ppl_ratio": 1.1, "gate_on": "upper", "passed": True}
    assert ev["early_stop"]["enabled"] is True and ev["sequence"] is not None
    assert {"data", "baseline", "evaluate"} <= set(report["timings_s"])

    calib = outcome.local.SEEN["calib"]
    assert isinstance(calib, list) and sum(b.shape[0] for b in calib) == 6
    for batch in calib:
        assert batch.dtype.is_floating_point is False and batch.shape[1] == 32
        assert batch.shape[0] <= 4 and str(batch.device) == "cpu"

    (entry,) = (private_cache / "baseline").glob("*.json")
    key_parts = json.loads(entry.read_text())["parts"]  # the load fingerprint, not a second one
    assert key_parts["weights"] == report["integrity"]["digest_at_load"]
    second = run(invarlock_project, config(tiny_gpt2_dir)).report
    assert second["evaluation"]["baseline"]["cached"] is True
    assert second["evaluation"]["pairs"] == ev["pairs"]


def test_early_verdict_equals_the_full_verdict(invarlock_project, tiny_gpt2_dir: Path) -> None:
    early = run(invarlock_project, config(tiny_gpt2_dir)).report
    full = run(invarlock_project, config(tiny_gpt2_dir, eval_extra="early_stop: false")).report
    assert early["evaluation"]["early_stop"]["stopped_at"] is not None  # int8: known early
    assert early["evaluation"]["tokens_saved"] > 0
    assert full["evaluation"]["windows_used"] == 16 and full["evaluation"]["sequence"] is None
    assert early["evaluation"]["gate"]["passed"] == full["evaluation"]["gate"]["passed"]
    n = early["evaluation"]["windows_used"]
    assert early["evaluation"]["pairs"] == full["evaluation"]["pairs"][:n]  # same order


def test_the_gate_rolls_back_with_exit_1_and_a_bit_exact_restore(
    invarlock_project, tiny_gpt2_dir: Path
) -> None:
    text = config(tiny_gpt2_dir, bits=4, eval_extra="max_ppl_ratio: 1.00001\n      gate_on: point")
    outcome = run(invarlock_project, text).assert_rolled_back()
    report = outcome.report
    assert report["evaluation"]["gate"]["passed"] is False
    (reason,) = report["decision"]["reasons"]
    assert reason.startswith("evaluation gate (eval.max_ppl_ratio): perplexity ratio point")
    assert report["decision"]["model_restored"] is True
    assert report["snapshot"]["restored"] is True and report["snapshot"]["verified"] is True
    seen = outcome.local.SEEN
    assert outcome.local.state_hash(seen["model"]) == seen["before"]
    assert weight_bits(seen["model"]) == weight_bits(load_model(tiny_gpt2_dir))


def test_a_plugin_adds_an_evaluator(invarlock_project, tiny_gpt2_dir: Path) -> None:
    project = invarlock_project(config(tiny_gpt2_dir, eval_extra="metric: tail_nll"), RECORDER)
    report = project.run().assert_status("kept", 0).report
    assert report["evaluation"]["metric"] == "tail_nll"
    listed = project.plugins("evaluators", "--json").assert_ok().json()["components"]
    origins = {c["name"]: (c["origin"], c["status"]) for c in listed}
    assert origins["tail_nll"] == ("local", "ready")
    assert origins["perplexity"] == ("builtin", "ready")
    plain = run(invarlock_project, config(tiny_gpt2_dir)).report
    # the tail of a window is predicted from more context than its head: different numbers
    assert report["evaluation"]["pairs"][0] != plain["evaluation"]["pairs"][0]


def test_an_unknown_metric_is_a_config_error(invarlock_project, tiny_gpt2_dir: Path) -> None:
    text = config(tiny_gpt2_dir, eval_extra="metric: bleu")
    report = run(invarlock_project, text).assert_exit(2).report
    assert report["exit_code"] == 2 and "unknown evaluator 'bleu'" in report["error"]["message"]


def test_a_model_without_tokenizer_is_a_data_error(
    invarlock_project, tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes((tiny_gpt2_dir / name).read_bytes())
    report = run(invarlock_project, config(bare)).assert_exit(4).report
    assert report["exit_code"] == 4 and "comes without a tokenizer" in report["error"]["message"]


def test_too_little_text_is_a_data_error(invarlock_project, tiny_gpt2_dir: Path) -> None:
    outcome = run(invarlock_project, config(tiny_gpt2_dir), "--set", "dataset.eval_windows=500")
    report = outcome.assert_exit(4).report
    assert report["exit_code"] == 4 and "not enough text" in report["error"]["message"]


def test_without_a_dataset_guards_get_no_calib_and_nothing_is_evaluated(
    invarlock_project, tiny_gpt2_dir: Path
) -> None:
    text = f"""
    model: {{id: {tiny_gpt2_dir}, device: cpu}}
    guards: {{order: [recorder]}}
    """
    outcome = run(invarlock_project, text).assert_status("kept")
    assert outcome.local.SEEN["calib"] is None
    assert "evaluation" not in outcome.report


def test_the_summary_shows_perplexities_ratio_and_verdict(
    invarlock_project, tiny_gpt2_dir: Path
) -> None:
    outcome = run(invarlock_project, config(tiny_gpt2_dir)).assert_ok()
    ev = outcome.report["evaluation"]
    outcome.assert_out(
        f"perplexity {ev['baseline']['ppl']:.2f} → {ev['edited']['ppl']:.2f}",
        f"ratio {ev['ratio']['point']:.4f}",
        "gate ≤ 1.1 on upper: passed",
    )


@pytest.mark.slow
def test_cli_json_is_one_document_and_the_gate_exit_code_is_1(
    tmp_path: Path, tiny_gpt2_dir: Path
) -> None:
    from cli_helpers import run_cli

    project = tmp_path / "cli"
    project.mkdir()
    (project / "config.yaml").write_text(
        f"""
model: {{id: {tiny_gpt2_dir}, device: cpu}}
edit: {{name: quant_rtn, bits: 3, symmetric: false, group_size: 16}}
guards: {{order: [invariants]}}
dataset: {{source: text, path: {CORPUS}, seq_len: 32, eval_windows: 8, calib_windows: 2}}
eval: {{max_ppl_ratio: 1.0001, gate_on: upper, early_stop: false}}
"""
    )
    cache = {"INVARLOCK_CACHE_DIR": str(tmp_path / "cache")}
    result = run_cli("run", "-c", "config.yaml", "--json", cwd=project, env=cache)
    assert result.code == 1, result.err
    report = result.json()  # stdout holds exactly one JSON document
    assert report["evaluation"]["gate"]["passed"] is False
    assert report["decision"]["model_restored"] is True
    human = run_cli("run", "-c", "config.yaml", cwd=project, env=cache)
    assert human.code == 1
    assert "Evaluation: perplexity" in human.out and "on upper: failed" in human.out
    assert "baseline cached" in human.out
