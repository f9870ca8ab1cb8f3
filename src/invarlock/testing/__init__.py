"""Helpers for tests and the quickstart: tiny deterministic models with a real tokenizer.

See :mod:`invarlock.testing.models`. Importing this package imports neither torch nor
transformers; the names below are resolved on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invarlock.testing.models import build_tiny_model, corpus_text, export_gguf

__all__ = ["build_tiny_model", "corpus_text", "export_gguf"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from invarlock.testing import models

        return getattr(models, name)
    raise AttributeError(f"module 'invarlock.testing' has no attribute {name!r}")
