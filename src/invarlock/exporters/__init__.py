"""Checkpoint formats a kept edit is written to, each proven by loading it back.

``output.format`` (a list) and ``invarlock export --format`` name them:

``native``
    invarlock's own integer codes + scales (:func:`invarlock.load_quantized`).
``hf``
    plain ``save_pretrained`` of the edited (dequantized) model in its dtype: loads anywhere.
``compressed-tensors``
    the checkpoint format of vLLM and transformers' compressed-tensors quantizer.
``gguf``
    llama.cpp / ollama / LM Studio, ``Q8_0`` or ``Q4_0`` (needs ``edit.grid``).

Importing this package is torch-free: the registry maps names to implementations, which are
imported on demand.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from invarlock.exporters.base import Exporter, ExportError, Source

__all__ = ["FORMATS", "ExportError", "Exporter", "Source", "get_exporter", "refusals"]

#: Format name -> ``(module, class)``.
FORMATS: dict[str, tuple[str, str]] = {
    "native": ("invarlock.exporters.native", "NativeExporter"),
    "hf": ("invarlock.exporters.hf", "HFExporter"),
    "compressed-tensors": ("invarlock.exporters.compressed_tensors", "CompressedTensorsExporter"),
    "gguf": ("invarlock.exporters.gguf", "GGUFExporter"),
}


def get_exporter(name: str) -> Exporter:
    """The exporter called ``name``; ``KeyError`` with the known names otherwise."""
    if name not in FORMATS:
        raise KeyError(f"unknown export format {name!r}; known: {', '.join(FORMATS)}")
    module, attribute = FORMATS[name]
    return getattr(import_module(module), attribute)()


def refusals(formats: list[str], codes: Any) -> dict[str, str]:
    """For each format that cannot hold an edit whose integer form is ``codes`` (what
    :func:`invarlock.core.edit.export_form` gives; ``None`` without one): the reason."""
    reasons = {}
    for name in formats:
        reason = get_exporter(name).refuse_edit(codes)
        if reason is not None:
            reasons[name] = reason
    return reasons
