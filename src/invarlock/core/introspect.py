"""Read a guard's or adapter's options from its signature and docstring.

Used by ``invarlock plugins --explain`` and by the runner to check a guard's YAML block
before constructing it (unknown keys → an error listing the accepted parameters).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from invarlock.core.jsonsafe import json_safe

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Options)\s*:\s*$")
_ENTRY = re.compile(r"^\s*(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_MISSING = object()


@dataclass(frozen=True)
class Parameter:
    """One keyword option of a constructor or method."""

    name: str
    annotation: str | None
    default: Any = _MISSING
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def default_text(self) -> str:
        return "required" if self.required else repr(self.default)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.annotation,
            "required": self.required,
            "default": None if self.required else json_safe(self.default),
            "help": self.help,
        }


def docstring_arguments(*objects: Any) -> dict[str, str]:
    """``name → help`` from the ``Args:`` sections of the given objects' docstrings."""
    helps: dict[str, str] = {}
    for obj in objects:
        doc = inspect.getdoc(obj) or ""
        in_section = False
        current: str | None = None
        indent = 0
        for line in doc.splitlines():
            if _SECTION.match(line):
                in_section, current = True, None
                continue
            if not in_section:
                continue
            if not line.strip():
                current = None
                continue
            line_indent = len(line) - len(line.lstrip())
            match = _ENTRY.match(line)
            if match and (current is None or line_indent <= indent):
                current, indent = match.group(1).lstrip("*"), line_indent
                helps.setdefault(current, match.group(2).strip())
            elif current is not None and line_indent > indent:
                helps[current] = f"{helps[current]} {line.strip()}".strip()
            else:
                in_section = False
    return helps


def parameters(func: Callable[..., Any], *, skip: tuple[str, ...] = ()) -> list[Parameter]:
    """Named parameters of ``func`` (no ``self``, ``*args``/``**kwargs`` or ``skip``)."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    helps = docstring_arguments(func)
    result = []
    for p in signature.parameters.values():
        if p.name == "self" or p.name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = None
        if p.annotation is not p.empty:
            annotation = p.annotation if isinstance(p.annotation, str) else _type_name(p.annotation)
        default = _MISSING if p.default is p.empty else p.default
        result.append(Parameter(p.name, annotation, default, helps.get(p.name, "")))
    return result


def constructor_parameters(cls: type) -> list[Parameter]:
    """The keyword options of ``cls(...)``, with help from ``__init__``'s or the class's
    ``Args:`` docstring section."""
    init = cls.__init__
    if init is object.__init__:
        return []
    params = parameters(init)
    class_helps = docstring_arguments(cls)
    return [
        p if p.help else Parameter(p.name, p.annotation, p.default, class_helps.get(p.name, ""))
        for p in params
    ]


def accepts_any_keyword(func: Callable[..., Any]) -> bool:
    try:
        return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
