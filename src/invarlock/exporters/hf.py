"""``hf``: the edited (dequantized) model as a plain ``save_pretrained`` checkpoint.

Any transformers-based stack loads it; the weights are the guarded ones in the model's own
dtype (no quantization metadata, so no memory saving at serving time).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from invarlock.exporters.base import Source

__all__ = ["HFExporter", "copy_tokenizer"]


def copy_tokenizer(source: Source, out: Path) -> None:
    """Copy the tokenizer (and generation config) files of an HF source directory."""
    from invarlock.edits.export import COPIED_FILES

    if source.model_dir is None:
        return
    for name in COPIED_FILES:
        if (source.model_dir / name).is_file():
            shutil.copy2(source.model_dir / name, out / name)


class HFExporter:
    name = "hf"
    loader = "transformers.AutoModelForCausalLM.from_pretrained"
    dirname = "model-hf"

    def refuse_edit(self, codes: Any) -> str | None:
        return None

    def refuse_model(self, model: Any, codes: Any, source: Source) -> str | None:
        if not hasattr(model, "save_pretrained"):
            return f"{type(model).__name__} is not a transformers model (no save_pretrained)"
        return None

    def write(self, model: Any, codes: Any, out: Path, source: Source) -> None:
        model.save_pretrained(out)  # transformers writes shard by shard
        copy_tokenizer(source, out)

    def load(self, out: Path, model: Any) -> Any:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(out, dtype=model.dtype).eval()
