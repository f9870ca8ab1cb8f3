"""Hooks a plugin sees during a real run: the progress hooks the terminal display also
implements, and each component built exactly once per run (in-process, tiny GPT-2)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

CORPUS = str(resources.files("invarlock.testing").joinpath("data", "corpus.txt"))


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVARLOCK_CACHE_DIR", str(tmp_path / "cache"))


def config(
    model_dir: Path,
    adapter: str = "auto",
    order: str = "[invariants]",
    metric: str = "perplexity",
    guard_block: str = "",
) -> str:
    block = f"\n      counting: {guard_block}" if guard_block else ""
    return f"""
    model:
      id: {model_dir}
      adapter: {adapter}
      device: cpu
    edit:
      name: quant_rtn
      bits: 8
    guards:
      order: {order}{block}
    dataset:
      source: text
      path: {CORPUS}
      seq_len: 32
      eval_windows: 8
      calib_windows: 2
      seed: 3
    eval:
      batch_size: 4
      metric: {metric}
    """


PHASE_RECORDER = """
SEEN = []


def invarlock_phase_start(run, phase, detail):
    SEEN.append(("start", phase, detail, run.run_id))


def invarlock_phase_end(phase, seconds):
    SEEN.append(("end", phase, seconds))


def invarlock_eval_progress(phase, done, total, tokens):
    SEEN.append(("progress", phase, done, total, tokens))
"""


def test_a_local_plugin_observes_every_phase_and_the_evaluation(
    invarlock_project, tiny_gpt2_dir: Path
) -> None:
    outcome = invarlock_project(config(tiny_gpt2_dir), PHASE_RECORDER).run().assert_kept()
    report, seen = outcome.report, outcome.local.SEEN
    phases = [p["name"] for p in report["phases"]]
    assert [s[1] for s in seen if s[0] == "start"] == phases
    assert [s[1] for s in seen if s[0] == "end"] == phases
    assert {s[3] for s in seen if s[0] == "start"} == {report["run_id"]}
    ended = [round(s[2], 6) for s in seen if s[0] == "end"]
    assert ended == [p["duration_s"] for p in report["phases"]]
    evaluate = [s for s in seen if s[:2] == ("progress", "evaluate")]
    assert evaluate and evaluate[-1][2] == report["evaluation"]["windows_used"]
    assert all(s[4] == s[2] * 32 for s in evaluate)  # tokens = windows × seq_len
    baseline = [s for s in seen if s[:2] == ("progress", "baseline")]
    assert [s[2] for s in baseline] == [4, 8] and {s[3] for s in baseline} == {8}
    # A user plugin implements them: its calls are logged and followed by the model check.
    logged = [e for e in outcome.events if e.get("hook") == "invarlock_phase_start"]
    assert len(logged) == len(phases)
    assert {tuple(e["plugins"]) for e in logged} == {("local:invarlock_plugins.py",)}
    checked = {c["phase"] for c in report["integrity"]["checks"]}
    assert {"invarlock_phase_end", "invarlock_eval_progress"} <= checked


def test_the_display_is_a_host_plugin_neither_logged_nor_checked(
    invarlock_project, tiny_gpt2_dir: Path
) -> None:
    outcome = invarlock_project(config(tiny_gpt2_dir)).run().assert_kept()
    assert "  load " in outcome.err and "invariants validate: continue" in outcome.err
    hooks = set(outcome.hooks_called())
    assert not hooks & {"invarlock_phase_start", "invarlock_phase_end", "invarlock_eval_progress"}
    guard_results = [e for e in outcome.events if e.get("hook") == "invarlock_guard_result"]
    assert guard_results and all(e["plugins"] == [] for e in guard_results)
    checked = {c["phase"] for c in outcome.report["integrity"]["checks"]}
    assert not any(phase.startswith("invarlock_") for phase in checked)
    listed = outcome.report["plugins"]
    assert all("display" not in p["name"] for p in listed)


COUNTING = '''
from invarlock import hookimpl
from invarlock.adapters.hf_causal import HF_Causal_Adapter
from invarlock.core.api import Guard
from invarlock.evaluation.perplexity import PerplexityEvaluator

CALLS = {"adapter": 0, "guard": 0, "evaluator": 0, "can_load": 0, "describe": 0}


class CountingAdapter(HF_Causal_Adapter):
    """hf_causal, counting what the host asks of it."""

    name = "counting_hf"

    def __init__(self):
        super().__init__()
        CALLS["adapter"] += 1

    def can_load(self, model_id):
        CALLS["can_load"] += 1
        return super().can_load(model_id)

    def describe(self, model):
        CALLS["describe"] += 1
        return super().describe(model)


class CountingGuard(Guard):
    """Passes; counts its constructions."""

    name = "counting"

    def __init__(self, limit: float = 1.0):
        self.limit = limit
        CALLS["guard"] += 1

    def validate(self, model, adapter, context):
        return {"passed": True, "action": "continue", "message": "ok"}


class CountingEvaluator(PerplexityEvaluator):
    """Perplexity, counting its constructions."""

    name = "counting_ppl"

    def __init__(self):
        CALLS["evaluator"] += 1


@hookimpl
def invarlock_register_adapters(register):
    register(CountingAdapter)


@hookimpl
def invarlock_register_guards(register):
    register(CountingGuard)


@hookimpl
def invarlock_register_evaluators(register):
    register(CountingEvaluator)
'''


@pytest.mark.parametrize("adapter", ["auto", "counting_hf"])
def test_a_run_constructs_each_component_once(
    invarlock_project, tiny_gpt2_dir: Path, adapter: str
) -> None:
    text = config(tiny_gpt2_dir, adapter, "[counting]", "counting_ppl")
    outcome = invarlock_project(text, COUNTING).run().assert_kept()
    assert outcome.report["model"]["adapter"] == "counting_hf"  # auto asked the plugin first
    calls = outcome.local.CALLS
    assert calls == {
        "adapter": 1,
        "guard": 1,
        "evaluator": 1,
        "can_load": 1 if adapter == "auto" else 0,
        "describe": 1,
    }


def test_a_guard_whose_block_sets_options_is_built_from_them(
    invarlock_project, tiny_gpt2_dir: Path
) -> None:
    text = config(tiny_gpt2_dir, "counting_hf", "[counting]", guard_block="{limit: 2.0}")
    outcome = invarlock_project(text, COUNTING).run().assert_kept()
    assert outcome.local.CALLS["guard"] == 2  # the registry's check from defaults, the run's
