"""Shared with the fault plugins: the loaded models and the hooks the recorder saw."""

from __future__ import annotations

from typing import Any

MODELS: list[Any] = []
CALLED: list[str] = []


def reset() -> None:
    MODELS.clear()
    CALLED.clear()
