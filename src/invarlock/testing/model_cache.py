"""Tiny models for tests, built once and kept on disk and in memory.

Building a tiny model trains its tokenizer (seconds); loading one takes milliseconds. So
:class:`TinyModelCache` builds each ``(family, seed)`` at most once per machine, in
``$INVARLOCK_CACHE_DIR/testing`` (default ``~/.cache/invarlock/testing``), under a key that
changes whenever the builder's code or corpus changes, and keeps one loaded copy per
session from which every test gets its own deep copy.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    """``$INVARLOCK_CACHE_DIR/testing``, default ``~/.cache/invarlock/testing``."""
    base = os.environ.get("INVARLOCK_CACHE_DIR") or Path.home() / ".cache" / "invarlock"
    return Path(base) / "testing"


def _builder_key() -> str:
    """A digest of the model builder and its corpus: a change rebuilds the cached models."""
    digest = hashlib.sha256()
    package = resources.files("invarlock.testing")
    for part in ("models.py", "data/corpus.txt"):
        digest.update(package.joinpath(part).read_bytes())
    return digest.hexdigest()[:12]


class TinyModelCache:
    """Tiny models by family: directories on disk, loaded models and tokenizers in memory."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_root()
        self._models: dict[tuple[str, int], Any] = {}
        self._tokenizers: dict[tuple[str, int], Any] = {}

    def directory(self, family: str = "gpt2", seed: int = 0) -> Path:
        """The saved model directory (``config.json``, ``model.safetensors``, tokenizer)."""
        target = self.root / f"tiny-{family}-seed{seed}-{_builder_key()}"
        if (target / "config.json").is_file():
            return target
        from invarlock.testing.models import build_tiny_model

        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=self.root))
        try:
            build_tiny_model(family, staging / "model", seed=seed)  # type: ignore[arg-type]
            try:
                (staging / "model").rename(target)  # another process may have won the race
            except OSError:
                if not (target / "config.json").is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def model(self, family: str = "gpt2", seed: int = 0) -> Any:
        """A fresh copy of the tiny model (eval mode, float32, CPU): yours to edit."""
        key = (family, seed)
        if key not in self._models:
            from transformers import AutoModelForCausalLM

            loaded = AutoModelForCausalLM.from_pretrained(self.directory(family, seed))
            self._models[key] = loaded.eval()
        return copy.deepcopy(self._models[key])

    def tokenizer(self, family: str = "gpt2", seed: int = 0) -> Any:
        """The model's real byte-level BPE tokenizer (shared: do not modify it)."""
        key = (family, seed)
        if key not in self._tokenizers:
            from transformers import AutoTokenizer

            self._tokenizers[key] = AutoTokenizer.from_pretrained(self.directory(family, seed))
        return self._tokenizers[key]
