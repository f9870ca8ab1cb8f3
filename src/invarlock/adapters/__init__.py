"""Built-in model adapters: ``hf_causal`` (Hugging Face causal LMs) and ``auto``.

Importing this package imports neither torch nor transformers, so ``invarlock plugins`` can
list the adapters cheaply; the adapters import both when they load a model.
"""

from __future__ import annotations

from invarlock.adapters.auto import AutoAdapter
from invarlock.adapters.hf_causal import HF_Causal_Adapter

__all__ = ["AutoAdapter", "HF_Causal_Adapter"]
