# tests/test_threshold_guard.py
"""Tests for ThresholdGuard."""

import pytest
import torch
from torch import nn

from my_plugin.threshold_guard import ThresholdGuard


class MockAdapter:
    """Minimal adapter for testing."""
    def describe(self, model):
        return {"model_type": "test"}


class SimpleModel(nn.Module):
    """Simple model for testing."""
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 10)
        self.attn = nn.Linear(10, 10)


@pytest.fixture
def model():
    return SimpleModel()


@pytest.fixture
def adapter():
    return MockAdapter()


def test_prepare_captures_baselines(model, adapter):
    """Test that prepare() captures baseline magnitudes."""
    guard = ThresholdGuard()
    result = guard.prepare(model, adapter, None, None)

    assert result["ready"] is True
    assert result["baseline_params"] > 0


def test_validate_passes_normal_weights(model, adapter):
    """Test validation passes for normal weight magnitudes."""
    guard = ThresholdGuard(max_magnitude=100.0)
    guard.prepare(model, adapter, None, None)

    result = guard.validate(model, adapter, {})

    assert result["passed"] is True
    assert result["action"] == "continue"


def test_validate_fails_large_weights(model, adapter):
    """Test validation fails when weights exceed threshold."""
    guard = ThresholdGuard(max_magnitude=0.01)  # Very low threshold
    guard.prepare(model, adapter, None, None)

    result = guard.validate(model, adapter, {})

    assert result["passed"] is False
    assert result["action"] == "abort"
    assert "violations" in result["metrics"]


def test_validate_warns_near_threshold(model, adapter):
    """Test validation warns when weights approach threshold."""
    # Set warn threshold just below actual magnitudes
    guard = ThresholdGuard(max_magnitude=100.0, warn_magnitude=0.01)
    guard.prepare(model, adapter, None, None)

    result = guard.validate(model, adapter, {})

    assert result["passed"] is True
    assert result["action"] == "warn"


def test_scope_filtering(model, adapter):
    """Test that scope correctly filters parameters."""
    guard = ThresholdGuard(scope="attn")
    guard.prepare(model, adapter, None, None)

    # Only attn layer should be captured
    assert len(guard._baseline_magnitudes) == 2  # weight + bias
    assert all("attn" in k for k in guard._baseline_magnitudes)
