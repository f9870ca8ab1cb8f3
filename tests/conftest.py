"""Shared fixtures: tiny models built once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny tied GPT-2 (float32, seed 0) saved with its tokenizer."""
    import torch

    from invarlock.testing.models import build_tiny_model

    torch.set_num_threads(1)
    return build_tiny_model("gpt2", tmp_path_factory.mktemp("models") / "tiny-gpt2")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny tied LLaMA (GQA, float32, seed 0) saved with its tokenizer."""
    import torch

    from invarlock.testing.models import build_tiny_model

    torch.set_num_threads(1)
    return build_tiny_model("llama", tmp_path_factory.mktemp("models") / "tiny-llama")
