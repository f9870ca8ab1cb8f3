"""Lazy package exports (PEP 562): a package names its public objects and each is imported
from its module on first use, so importing the package stays cheap (no torch, no pluggy)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that returns ``name`` from ``where[name]``.

    Use as ``__getattr__ = lazy_exports(__name__, {"Name": "package.module", ...})``.
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(module), name)

    return __getattr__
