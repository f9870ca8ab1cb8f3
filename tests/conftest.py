"""Suite fixtures on top of the shipped pytest plugin (``invarlock.testing.pytest_plugin``)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session", autouse=True)
def _session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test (and every CLI it starts) caches under one temporary directory."""
    with pytest.MonkeyPatch.context() as patch:
        cache = tmp_path_factory.mktemp("invarlock-cache")
        patch.setenv("INVARLOCK_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tiny_models: Any) -> Path:
    """A tiny tied GPT-2 (float32, seed 0) saved with its tokenizer (the shipped cache)."""
    import torch

    torch.set_num_threads(1)
    return tiny_models.directory("gpt2")


@pytest.fixture(scope="session")
def tiny_llama_dir(tiny_models: Any) -> Path:
    """A tiny tied LLaMA (GQA, float32, seed 0) saved with its tokenizer (the shipped cache)."""
    import torch

    torch.set_num_threads(1)
    return tiny_models.directory("llama")


@pytest.fixture(scope="session")
def tiny_gguf(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_llama_dir`` written as an unquantized GGUF file (with its tokenizer)."""
    from invarlock.testing import export_gguf

    return export_gguf(tiny_llama_dir, tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")


@pytest.fixture
def gpt2() -> Any:
    """A tiny GPT-2 (Conv1D weights) built in memory from a config, seed 0."""
    import torch
    from transformers import GPT2LMHeadModel

    from invarlock.testing.models import tiny_config

    torch.manual_seed(0)
    config = tiny_config("gpt2", vocab_size=300, n_layer=2, n_positions=64)
    return GPT2LMHeadModel(config).eval()


@pytest.fixture
def llama() -> Any:
    """A tiny LLaMA (GQA, an MLP width that is no multiple of 64) built in memory, seed 0."""
    import torch
    from transformers import LlamaForCausalLM

    from invarlock.testing.models import tiny_config

    torch.manual_seed(0)
    config = tiny_config("llama", tie_word_embeddings=False, vocab_size=300, num_hidden_layers=2)
    return LlamaForCausalLM(config).eval()


pytest_plugins = ["pytester"]
