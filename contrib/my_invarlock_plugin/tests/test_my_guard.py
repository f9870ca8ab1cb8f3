"""Tests for NaNCheckGuard."""

import torch
from torch import nn

from my_plugin.my_guard import NaNCheckGuard


def test_finite_model_passes():
    model = nn.Linear(4, 4)
    guard = NaNCheckGuard()
    guard.prepare(model, None, None, None)
    result = guard.validate(model, None, {})
    assert result["passed"] is True
    assert result["action"] == "continue"


def test_nan_aborts_when_strict_and_warns_otherwise():
    model = nn.Linear(4, 4)
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    assert NaNCheckGuard(strict=True).validate(model, None, {})["action"] == "abort"
    assert NaNCheckGuard(strict=False).validate(model, None, {})["action"] == "warn"
