# src/my_plugin/custom_adapter.py
"""Adapter for custom model format."""

from pathlib import Path
from typing import Any

from invarlock.core.api import ModelAdapter


class CustomFormatAdapter(ModelAdapter):
    """
    Adapter for loading models in a custom format.

    This adapter demonstrates the required interface. Replace the
    implementation with your actual loading logic.
    """

    name = "custom_format"

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
            **kwargs: Additional loading arguments.

        Returns:
            Loaded model instance.
        """
        import torch

        # Resolve device
        if device == "auto":
            if torch.cuda.is_available():
                device = "cuda"
            elif hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
                device = "mps"
            else:
                device = "cpu"

        # Load your model here
        model_path = Path(model_id)
        if not model_path.exists():
            raise FileNotFoundError(f"Model not found: {model_id}")

        # Example: load a state dict
        state_dict = torch.load(model_path / "model.pt", map_location=device)

        # Create and load model architecture
        # model = YourModelClass()
        # model.load_state_dict(state_dict)
        # model.to(device)
        # return model

        raise NotImplementedError("Replace with actual loading logic")

    def describe(self, model) -> dict[str, Any]:
        """
        Describe model structure for guards and reporting.

        Returns:
            Dictionary with model metadata.
        """
        return {
            "model_type": "custom",
            "model_class": type(model).__name__,
            "n_layer": getattr(model, "n_layer", None),
            "n_head": getattr(model, "n_head", None),
            # Add other relevant metadata
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
        state_dict = torch.load(buffer, map_location="cpu")
        model.load_state_dict(state_dict)
