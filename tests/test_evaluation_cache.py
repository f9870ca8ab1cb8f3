"""The baseline cache: hit, miss, and invalidation by weights, tokenizer and windows."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from invarlock.core.cache import cache_root
from invarlock.data.settings import DatasetSection
from invarlock.evaluation.cache import BaselineCache
from invarlock.evaluation.paired import PairedEvaluation
from invarlock.evaluation.perplexity import PerplexityEvaluator
from invarlock.evaluation.settings import EvalSection
from invarlock.models.fingerprint import Fingerprint
from invarlock.testing import load_model

CORPUS = str(resources.files("invarlock.testing").joinpath("data", "corpus.txt"))


@pytest.fixture
def model(tiny_gpt2_dir: Path) -> Any:
    return load_model(tiny_gpt2_dir)


@pytest.fixture
def tokenizer(tiny_gpt2_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_gpt2_dir)


def evaluation(model: Any, tokenizer: Any, cache: BaselineCache, seed: int = 0) -> Any:
    dataset = DatasetSection(
        source="text", path=CORPUS, seq_len=32, eval_windows=8, calib_windows=0, seed=seed
    )
    return PairedEvaluation.prepare(
        dataset, EvalSection(), PerplexityEvaluator(), model, tokenizer, cache=cache
    )


def baseline(model: Any, tokenizer: Any, cache: BaselineCache, seed: int = 0) -> Any:
    run = evaluation(model, tokenizer, cache, seed)
    run.run_baseline(model)
    return run


def test_a_second_run_reads_the_baseline_from_the_cache(
    model: Any, tokenizer: Any, tmp_path: Path
) -> None:
    cache = BaselineCache(tmp_path)
    first = baseline(model, tokenizer, cache)
    second = baseline(model, tokenizer, cache)
    assert (first.baseline_cached, second.baseline_cached) == (False, True)
    assert second.baseline == first.baseline
    entries = list((tmp_path / "baseline").iterdir())
    assert len(entries) == 1 and entries[0].suffix == ".json"  # no temporary file left


def test_a_changed_weight_misses(model: Any, tokenizer: Any, tmp_path: Path) -> None:
    cache = BaselineCache(tmp_path)
    first = baseline(model, tokenizer, cache)
    weight = model.transformer.h[1].mlp.c_fc.weight
    weight.data[0, 0] += 1e-3  # one element of one tensor
    changed = baseline(model, tokenizer, cache)
    assert changed.baseline_cached is False
    assert changed.baseline != first.baseline


def test_a_changed_buffer_or_untargeted_tensor_misses(
    model: Any, tokenizer: Any, tmp_path: Path
) -> None:
    cache = BaselineCache(tmp_path)
    baseline(model, tokenizer, cache)
    model.transformer.ln_f.bias.data[0] += 1e-3  # not a weight the edit touches
    assert baseline(model, tokenizer, cache).baseline_cached is False


def test_the_weights_part_is_the_integrity_fingerprint(
    model: Any, tokenizer: Any, tmp_path: Path
) -> None:
    run = evaluation(model, tokenizer, BaselineCache(tmp_path))
    at_load = Fingerprint.of(model)
    assert run.cache_parts(model)["weights"] == at_load.digest
    model.transformer.ln_f.bias.data[0] += 1e-3
    assert run.cache_parts(model, at_load)["weights"] == at_load.digest  # a given one is used as is
    assert run.cache_parts(model)["weights"] != at_load.digest


def test_a_model_with_unreadable_tensors_is_not_cached(
    model: Any, tokenizer: Any, tmp_path: Path
) -> None:
    import torch

    run = evaluation(model, tokenizer, BaselineCache(tmp_path))
    model.transformer.ln_f.bias = torch.nn.Parameter(torch.empty(64, device="meta"))
    assert run.cache_parts(model) == {}  # nothing to key a stale entry on


def test_a_changed_tokenizer_misses(model: Any, tokenizer: Any, tmp_path: Path) -> None:
    cache = BaselineCache(tmp_path)
    baseline(model, tokenizer, cache)
    tokenizer.add_tokens(["<|invarlock-test|>"])  # same ids for the text, another tokenizer
    run = baseline(model, tokenizer, cache)
    assert run.baseline_cached is False


def test_changed_windows_miss(model: Any, tokenizer: Any, tmp_path: Path) -> None:
    cache = BaselineCache(tmp_path)
    first = baseline(model, tokenizer, cache)
    other = baseline(model, tokenizer, cache, seed=1)
    assert other.windows.fingerprint != first.windows.fingerprint
    assert other.baseline_cached is False


def test_a_corrupt_entry_is_a_miss_and_is_rewritten(
    model: Any, tokenizer: Any, tmp_path: Path
) -> None:
    cache = BaselineCache(tmp_path)
    baseline(model, tokenizer, cache)
    (entry,) = (tmp_path / "baseline").iterdir()
    entry.write_text('{"format": "invarlock.baseline/v1", "losses": [1.0]')
    assert baseline(model, tokenizer, cache).baseline_cached is False
    assert baseline(model, tokenizer, cache).baseline_cached is True


def test_disabled_cache_writes_nothing(model: Any, tokenizer: Any, tmp_path: Path) -> None:
    dataset = DatasetSection(source="text", path=CORPUS, seq_len=32, eval_windows=8)
    run = PairedEvaluation.prepare(
        dataset,
        EvalSection(baseline_cache=False),
        PerplexityEvaluator(),
        model,
        tokenizer,
        cache=BaselineCache(tmp_path),
    )
    run.run_baseline(model)
    assert run.baseline_cached is False and not (tmp_path / "baseline").exists()


def test_cache_root_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("INVARLOCK_CACHE_DIR", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("INVARLOCK_CACHE_DIR")
    assert cache_root() == Path.home() / ".cache" / "invarlock"
