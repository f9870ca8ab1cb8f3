"""The built-in weight edits: ``quant_rtn`` (round-to-nearest quantization) and ``noop``.

Plugins add adapters and guards, never edits. Importing this package is cheap and torch-free
(``invarlock plugins edits`` lists :data:`EDITS`); :func:`get_edit` imports an implementation
on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from invarlock.core.edit import Edit, EditConfigError, EditResult, LayerStats
from invarlock.edits.config import EDIT_OPTIONS, option_lines

__all__ = [
    "EDITS",
    "Edit",
    "EditConfigError",
    "EditInfo",
    "EditResult",
    "LayerStats",
    "get_edit",
]


@dataclass(frozen=True)
class EditInfo:
    """What listings show about an edit."""

    name: str
    summary: str
    #: Parameter name -> ``"type = default: help"``.
    parameters: dict[str, str]


EDITS: dict[str, EditInfo] = {
    "quant_rtn": EditInfo(
        name="quant_rtn",
        summary="Round-to-nearest weight quantization (2-8 bits), applied in place",
        parameters=option_lines(EDIT_OPTIONS["quant_rtn"]),
    ),
    "noop": EditInfo(
        name="noop",
        summary="Change nothing (dry runs, guard baselines)",
        parameters={},
    ),
}

_IMPLEMENTATIONS: dict[str, tuple[str, str]] = {
    "quant_rtn": ("invarlock.edits.rtn", "QuantRTN"),
    "noop": ("invarlock.edits.noop", "Noop"),
}


def get_edit(name: str) -> Edit:
    """A fresh instance of the edit called ``name``."""
    if name not in _IMPLEMENTATIONS:
        known = ", ".join(sorted(EDITS))
        raise EditConfigError(f"unknown edit {name!r}; known edits: {known}", key_path="edit.name")
    module_name, class_name = _IMPLEMENTATIONS[name]
    return getattr(import_module(module_name), class_name)()
