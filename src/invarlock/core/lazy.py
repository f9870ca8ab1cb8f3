"""Lazy package exports (PEP 562): a package names its public objects and each is imported
from its module on first use, so importing the package stays cheap (no torch, no pluggy)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that returns ``name`` from ``where[name]``.

    Use as ``__getattr__ = lazy_exports(__name__, {"Name": "package.module", ...})``. A name,
    once imported, is stored on the package, so later look-ups skip this function.
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        if package in sys.modules:  # later look-ups skip this function
            setattr(sys.modules[package], name, value)
        return value

    return __getattr__
