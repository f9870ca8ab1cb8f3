"""``auto``: pick the loader for a model id by its format, then load it.

A local directory with ``config.json`` and a local ``.gguf`` file are both Hugging Face formats,
so every model this adapter recognises is loaded as :class:`HF_Causal_Adapter` loads it, with
the same ``load_model`` options (inherited, so declared once); a Hub id is recognised only
when ``INVARLOCK_ALLOW_NETWORK=1``. The plugin manager additionally offers a model id to
plugin adapters (their ``can_load``) before it falls back to the built-ins; this class only
implements the built-in choice.
"""

from __future__ import annotations

from typing import ClassVar

from invarlock.adapters import hf_loading as loading
from invarlock.adapters.hf_causal import HF_Causal_Adapter


class AutoAdapter(HF_Causal_Adapter):
    """Detects the model format (HF directory, GGUF file, Hub id) and loads it as
    ``hf_causal`` does, with its options."""

    name: ClassVar[str] = "auto"

    @staticmethod
    def detect_format(model_id: str, gguf_file: str | None = None) -> str:
        """``"hf_dir"``, ``"gguf"`` or ``"hub"``; raises ``ModelLoadError`` for anything else."""
        return loading.resolve_source(model_id, gguf_file).kind
