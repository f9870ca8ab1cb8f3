# src/my_plugin/threshold_guard.py
"""Guard that monitors weight magnitude changes."""

from typing import Any

from invarlock.core.api import Guard


class ThresholdGuard(Guard):
    """
    Monitors maximum weight magnitude after edits.

    Fails if any weight exceeds the configured threshold, which can
    indicate numerical instability from aggressive quantization.
    """

    name = "threshold"

    def __init__(
        self,
        max_magnitude: float = 100.0,
        warn_magnitude: float = 50.0,
        scope: str = "all",
    ):
        """
        Args:
            max_magnitude: Abort threshold for weight magnitude.
            warn_magnitude: Warning threshold for weight magnitude.
            scope: Which layers to check ("all", "ffn", "attn").
        """
        self.max_magnitude = max_magnitude
        self.warn_magnitude = warn_magnitude
        self.scope = scope
        self._baseline_magnitudes: dict[str, float] = {}

    def prepare(self, model, adapter, calib, policy) -> dict[str, Any]:
        """Capture baseline weight magnitudes."""
        import torch

        self._baseline_magnitudes = {}
        for name, param in model.named_parameters():
            if self._in_scope(name):
                self._baseline_magnitudes[name] = param.abs().max().item()

        return {
            "ready": True,
            "baseline_params": len(self._baseline_magnitudes),
            "scope": self.scope,
        }

    def validate(self, model, adapter, context) -> dict[str, Any]:
        """Check weight magnitudes after edit."""
        import torch

        violations = []
        warnings = []
        max_seen = 0.0

        for name, param in model.named_parameters():
            if not self._in_scope(name):
                continue

            magnitude = param.abs().max().item()
            max_seen = max(max_seen, magnitude)

            if magnitude > self.max_magnitude:
                violations.append({
                    "param": name,
                    "magnitude": magnitude,
                    "baseline": self._baseline_magnitudes.get(name, 0),
                })
            elif magnitude > self.warn_magnitude:
                warnings.append({
                    "param": name,
                    "magnitude": magnitude,
                })

        if violations:
            return {
                "passed": False,
                "action": "abort",
                "message": f"{len(violations)} params exceed magnitude threshold",
                "warnings": [w["param"] for w in warnings],
                "metrics": {
                    "max_magnitude": max_seen,
                    "violations": violations[:3],
                    "violation_count": len(violations),
                },
            }

        if warnings:
            return {
                "passed": True,
                "action": "warn",
                "message": f"{len(warnings)} params near threshold",
                "warnings": [w["param"] for w in warnings],
                "metrics": {
                    "max_magnitude": max_seen,
                    "warning_count": len(warnings),
                },
            }

        return {
            "passed": True,
            "action": "continue",
            "message": "All weight magnitudes within bounds",
            "metrics": {"max_magnitude": max_seen},
        }

    def _in_scope(self, name: str) -> bool:
        """Check if parameter is in configured scope."""
        if self.scope == "all":
            return True
        if self.scope == "ffn":
            return "mlp" in name.lower() or "ffn" in name.lower()
        if self.scope == "attn":
            return "attn" in name.lower() or "attention" in name.lower()
        return True
