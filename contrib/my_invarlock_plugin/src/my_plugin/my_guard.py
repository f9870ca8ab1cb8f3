# src/my_plugin/my_guard.py
"""A simple guard that checks for NaN values in weights."""

from invarlock.core.api import Guard


class NaNCheckGuard(Guard):
    """Guard that fails if any model weight contains NaN."""

    name = "nan_check"

    def __init__(self, strict: bool = True):
        """
        Args:
            strict: If True, abort on NaN. If False, warn only.
        """
        self.strict = strict

    def prepare(self, model, adapter, calib, policy):
        """Called before the edit is applied."""
        return {"ready": True, "checked_params": 0}

    def validate(self, model, adapter, context):
        """Called after the edit is applied."""
        import torch

        nan_params = []
        total_params = 0

        for name, param in model.named_parameters():
            total_params += 1
            if torch.isnan(param).any():
                nan_params.append(name)

        if nan_params:
            action = "abort" if self.strict else "warn"
            return {
                "passed": False,
                "action": action,
                "message": f"Found NaN in {len(nan_params)} parameters",
                "metrics": {
                    "nan_param_count": len(nan_params),
                    "nan_params": nan_params[:5],  # First 5 for brevity
                },
            }

        return {
            "passed": True,
            "action": "continue",
            "message": f"All {total_params} parameters are finite",
            "metrics": {"checked_params": total_params},
        }
