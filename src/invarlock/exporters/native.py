"""``native``: invarlock's integer codes + scales, read by :func:`invarlock.load_quantized`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invarlock.exporters.base import Source, refuse_without_codes

__all__ = ["NativeExporter"]


class NativeExporter:
    name = "native"
    loader = "invarlock.load_quantized"
    dirname = "model"

    def refuse_edit(self, codes: Any) -> str | None:
        return refuse_without_codes(codes)

    def refuse_model(self, model: Any, codes: Any, source: Source) -> str | None:
        return None

    def write(self, model: Any, codes: Any, out: Path, source: Source) -> None:
        from invarlock.edits.export import write_codes

        write_codes(model, codes, out, source_dir=source.model_dir)

    def load(self, out: Path, model: Any) -> Any:
        from invarlock.edits.export import load_quantized

        return load_quantized(out)
