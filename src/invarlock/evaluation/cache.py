"""The baseline cache: per-window baseline losses, reused when nothing they depend on changed.

An entry's key is a sha256 over the fingerprints of everything the baseline losses depend
on: the whole model (the integrity fingerprint's digest, ``runner/integrity.py``: every
parameter and buffer by name, dtype, shape and bytes), the tokenizer (its serialised
definition), the evaluation windows (their token ids, in order), the evaluator's name and
version, and the model's dtype and device. A changed weight, buffer, tokenizer or window set
gives another key, so a stale entry is never read.
Entries are small JSON files under ``$INVARLOCK_CACHE_DIR/baseline/`` (default
``~/.cache/invarlock``), written atomically; an unreadable entry counts as a miss.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from invarlock.core.atomic import atomic_write
from invarlock.core.cache import cache_root

_FORMAT = "invarlock.baseline/v1"


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """sha256 of the tokenizer's serialised definition (fast tokenizers), else of its vocabulary
    and special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        text = backend.to_str()
    else:
        vocab = sorted(tokenizer.get_vocab().items())
        text = json.dumps([vocab, getattr(tokenizer, "special_tokens_map", {})], default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def baseline_key(**parts: str) -> str:
    """One key from named fingerprints (order-independent)."""
    text = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class BaselineCache:
    """Per-window baseline losses stored under ``root/baseline/<key>.json``."""

    def __init__(self, root: Path | None = None) -> None:
        self.directory = (root or cache_root()) / "baseline"

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, key: str, windows: int) -> list[float] | None:
        """The stored losses for ``key``, or ``None`` (absent, unreadable or the wrong size)."""
        try:
            entry = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        losses = entry.get("losses") if isinstance(entry, dict) else None
        if entry.get("format") != _FORMAT or not isinstance(losses, list):
            return None
        if len(losses) != windows or not all(isinstance(v, float) for v in losses):
            return None
        return losses

    def store(self, key: str, losses: Sequence[float], parts: dict[str, str]) -> Path:
        """Write the entry atomically; returns its path."""
        path = self.path(key)
        entry = {"format": _FORMAT, "key": key, "parts": parts, "losses": list(losses)}
        with atomic_write(path) as handle:
            handle.write(json.dumps(entry) + "\n")
        return path
