# src/my_plugin/custom_adapter.py
"""Adapter for a custom model format: a directory with ``config.json`` and its weights.

The weights are either ``model.safetensors`` or ``model.pt``, a weights-only torch state
dict (``torch.save(model.state_dict(), "model.pt")``). The architecture comes from
``config.json`` (its ``model_type``), so the right transformers class is built.
"""

from pathlib import Path
from typing import Any

from invarlock.core.api import ModelAdapter

WEIGHT_FILES = ("model.safetensors", "model.pt")


class CustomFormatAdapter(ModelAdapter):
    """
    Adapter for loading models in a custom format.

    A directory holding ``config.json`` and either ``model.safetensors`` or a weights-only
    torch state dict ``model.pt``. ``adapter: auto`` picks it for directories with
    ``model.pt`` (plain Hugging Face directories stay with ``hf_causal``).
    """

    name = "custom_format"
    backend = "transformers"

    def can_load(self, model_id: str) -> bool:
        path = Path(model_id)
        return (path / "config.json").is_file() and (path / "model.pt").is_file()

    def load_model(
        self,
        model_id: str,
        device: str = "auto",
        **kwargs,
    ) -> Any:
        """
        Load a model from the custom format.

        Args:
            model_id: Path to model directory or identifier.
            device: Target device ("auto", "cpu", "cuda", "mps").
            **kwargs: Additional loading arguments (``dtype``: "float32", "float16"...).

        Returns:
            Loaded model instance.
        """
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        # Resolve device
        if device == "auto":
            if torch.cuda.is_available():
                device = "cuda"
            elif hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
                device = "mps"
            else:
                device = "cpu"

        model_path = Path(model_id)
        if not model_path.exists():
            raise FileNotFoundError(f"Model not found: {model_id}")
        if not (model_path / "config.json").is_file():
            raise FileNotFoundError(f"{model_path / 'config.json'} not found")
        weights = next((model_path / f for f in WEIGHT_FILES if (model_path / f).is_file()), None)
        if weights is None:
            raise FileNotFoundError(f"{model_path}: no {' or '.join(WEIGHT_FILES)} found")

        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            state_dict = load_file(weights)
        else:
            state_dict = torch.load(weights, map_location="cpu", weights_only=True)

        # Create and load model architecture: config.json names the transformers class.
        config = AutoConfig.from_pretrained(model_path)
        model = AutoModelForCausalLM.from_config(config)
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
        tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
        if unexpected or set(missing) - tied:
            raise ValueError(
                f"{weights}: weights do not match {type(model).__name__} "
                f"(missing {sorted(set(missing) - tied)[:3]}, unexpected {sorted(unexpected)[:3]})"
            )
        if tied:
            model.tie_weights()
        dtype = kwargs.get("dtype")
        if dtype not in (None, "auto"):
            model.to(getattr(torch, dtype))
        return model.to(device).eval()

    def describe(self, model) -> dict[str, Any]:
        """
        Describe model structure for guards and reporting.

        Returns:
            Dictionary with model metadata.
        """
        config = getattr(model, "config", None)
        first = next(model.parameters(), None)
        return {
            "model_type": getattr(config, "model_type", "custom"),
            "model_class": type(model).__name__,
            "n_layer": getattr(config, "num_hidden_layers", None),
            "n_head": getattr(config, "num_attention_heads", None),
            "hidden_size": getattr(config, "hidden_size", None),
            "n_params": sum(p.numel() for p in model.parameters()),
            "dtype": str(first.dtype).removeprefix("torch.") if first is not None else None,
            "device": str(first.device) if first is not None else None,
        }

    def snapshot(self, model) -> bytes:
        """Create an in-memory snapshot for retry loops."""
        import io

        import torch

        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        return buffer.getvalue()

    def restore(self, model, snapshot: bytes) -> None:
        """Restore model state from snapshot."""
        import io

        import torch

        buffer = io.BytesIO(snapshot)
        state_dict = torch.load(buffer, map_location="cpu", weights_only=True)
        model.load_state_dict(state_dict)
