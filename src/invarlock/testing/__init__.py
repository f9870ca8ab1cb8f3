"""Helpers for tests and the quickstart: tiny deterministic models with a real tokenizer.

See :mod:`invarlock.testing.models`; the pytest fixtures are in
:mod:`invarlock.testing.pytest_plugin` (docs/testing.md).
Importing this package imports neither torch nor
transformers; the names below are resolved on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from invarlock.core.lazy import lazy_exports

if TYPE_CHECKING:
    from invarlock.testing.models import build_tiny_model, corpus_text, export_gguf
    from invarlock.testing.weights import changed_tensors, load_model, weight_bits

_WHERE = {
    "build_tiny_model": "invarlock.testing.models",
    "corpus_text": "invarlock.testing.models",
    "export_gguf": "invarlock.testing.models",
    "changed_tensors": "invarlock.testing.weights",
    "load_model": "invarlock.testing.weights",
    "weight_bits": "invarlock.testing.weights",
}
__all__ = [
    "build_tiny_model",
    "changed_tensors",
    "corpus_text",
    "export_gguf",
    "load_model",
    "weight_bits",
]

__getattr__ = lazy_exports(__name__, _WHERE)
