"""``auto``: pick the loader for a model id by its format, then delegate to it.

A local directory with ``config.json`` and a local ``.gguf`` file are both Hugging Face formats,
so every model this adapter recognises is loaded by :class:`HF_Causal_Adapter`; a Hub id is
recognised only when ``INVARLOCK_ALLOW_NETWORK=1``. The plugin manager additionally offers a
model id to plugin adapters (their ``can_load``) before it falls back to the built-ins; this
class only implements the built-in choice.
"""

from __future__ import annotations

from typing import Any, ClassVar

from invarlock.adapters import hf_loading as loading
from invarlock.adapters.hf_causal import HF_Causal_Adapter
from invarlock.core.api import ModelAdapter


class AutoAdapter(ModelAdapter):
    """Detects the model format (HF directory, GGUF file, Hub id) and delegates to ``hf_causal``."""

    name: ClassVar[str] = "auto"
    backend: ClassVar[str | None] = "transformers"
    requires: ClassVar[tuple[str, ...]] = ("torch", "transformers")

    def __init__(self) -> None:
        self._hf: HF_Causal_Adapter | None = None

    @property
    def _delegate(self) -> HF_Causal_Adapter:
        """The ``hf_causal`` adapter it delegates to, built on first use (an ``auto`` that
        is only listed builds none)."""
        if self._hf is None:
            self._hf = HF_Causal_Adapter()
        return self._hf

    @staticmethod
    def detect_format(model_id: str, gguf_file: str | None = None) -> str:
        """``"hf_dir"``, ``"gguf"`` or ``"hub"``; raises ``ModelLoadError`` for anything else."""
        return loading.resolve_source(model_id, gguf_file).kind

    def can_load(self, model_id: str) -> bool:
        return self._delegate.can_load(model_id)

    def load_model(self, model_id: str, device: str = "auto", **kwargs: Any) -> Any:
        """Load ``model_id`` with the adapter for its format (see ``HF_Causal_Adapter``)."""
        self.detect_format(model_id, kwargs.get("gguf_file"))  # fails fast on unknown formats
        return self._delegate.load_model(model_id, device, **kwargs)

    def load_tokenizer(self, model_id: str, **kwargs: Any) -> Any | None:
        """The tokenizer stored with ``model_id``, or ``None`` (see ``HF_Causal_Adapter``)."""
        return self._delegate.load_tokenizer(model_id, **kwargs)

    def describe(self, model: Any) -> dict[str, Any]:
        return dict(self._delegate.describe(model))

    @property
    def load_info(self) -> dict[str, Any]:
        """Where the last loaded model came from (see ``HF_Causal_Adapter.load_info``)."""
        return self._delegate.load_info
