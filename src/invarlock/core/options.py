"""The one option schema: options are declared by a signature and its docstring's ``Args:``.

A guard's constructor, an adapter's ``load_model`` and an edit's option function declare
their options once, as annotated keyword parameters with defaults, documented in an
``Args:`` section. :func:`declared_options` reads that declaration (``--explain`` and the
listings show it); :func:`check_block` checks a YAML block against it: unknown keys list
the accepted ones, required ones must be given, and every value is coerced to its declared
type by :func:`coerce` (``1e-6``, a string to YAML 1.1, becomes a float for a ``float``;
``abc`` is an error). Errors are :class:`OptionError` carrying the key path.

Types understood: ``bool``, ``int``, ``float``, ``str``, ``Literal[...]``, ``list[T]``,
``tuple[T, ...]``, ``tuple[T1, T2]``, ``dict[str, T]``, ``X | None`` (and other unions,
tried in order), ``Any`` and unannotated parameters (passed through). A lone value where
a list is declared is a one-item list. Ranges and rules between options stay with the
component (its constructor or parse function).
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Union, get_args, get_origin

from invarlock.core.errors import ConfigError
from invarlock.core.jsonsafe import json_safe

__all__ = [
    "Option",
    "OptionError",
    "SectionReader",
    "accepts_any_keyword",
    "at_least",
    "band",
    "check_block",
    "choice_text",
    "coerce",
    "constructor_options",
    "declared_options",
    "docstring_arguments",
    "in_range",
    "positive",
    "type_text",
]

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Options)\s*:\s*$")
_ENTRY = re.compile(r"^\s*(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
#: A number YAML 1.1 leaves as a string (``1e-6``, ``+2E3``): read as a float.
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_MISSING: Any = inspect.Parameter.empty


class OptionError(ConfigError, TypeError, ValueError):
    """A value does not fit its declared option (a :class:`ConfigError` with its key path;
    also a TypeError/ValueError, what a constructor raises for a bad argument)."""


@dataclass(frozen=True)
class Option:
    """One declared keyword option: name, type (and its text), default and help."""

    name: str
    annotation: str | None
    default: Any = _MISSING
    help: str = ""
    type: Any = Any

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


class SectionReader(Protocol):
    """What a config-section parser gets from the config loader (``runner.config``): structure
    checks and located errors; values are coerced by :func:`coerce` under the hood."""

    def fail(self, key_path: str, problem: str) -> ConfigError: ...

    def mapping(self, data: Mapping[str, Any], key: str) -> dict[str, Any]: ...

    def keys(self, section: Mapping[str, Any], prefix: str, allowed: Sequence[str]) -> None: ...

    def value(
        self, section: Mapping[str, Any], prefix: str, key: str, kind: Any, default: Any
    ) -> Any: ...

    def string(
        self, section: Mapping[str, Any], prefix: str, key: str, default: str | None
    ) -> str: ...


# --------------------------------------------------------------------------- declaration


def docstring_arguments(*objects: Any) -> dict[str, str]:
    """``name → help`` from the ``Args:`` sections of the given objects' docstrings."""
    helps: dict[str, str] = {}
    for obj in objects:
        in_section, current, indent = False, None, 0
        for line in (inspect.getdoc(obj) or "").splitlines():
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


def declared_options(
    func: Callable[..., Any], *, skip: tuple[str, ...] = (), docs: Sequence[Any] = ()
) -> list[Option]:
    """The named parameters of ``func`` (no ``self``, ``*args``/``**kwargs`` or ``skip``),
    with help from ``func``'s ``Args:`` section, else from ``docs``' ones."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    helps = {**docstring_arguments(*docs), **docstring_arguments(func)}
    hints = _type_hints(func)
    found = []
    for p in signature.parameters.values():
        if p.name == "self" or p.name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        kind = hints.get(p.name, Any)
        text = None
        if kind is not Any:
            text = type_text(kind)
        elif p.annotation is not p.empty:
            text = p.annotation if isinstance(p.annotation, str) else type_text(p.annotation)
        found.append(Option(p.name, text, p.default, helps.get(p.name, ""), kind))
    return found


def constructor_options(cls: type) -> list[Option]:
    """The options of ``cls(...)``: ``__init__``'s parameters, documented in ``__init__``'s
    ``Args:`` section or the first class of ``cls``'s MRO documenting them (a base class
    documents the options its subclasses share)."""
    if cls.__init__ is object.__init__:
        return []
    return declared_options(cls.__init__, docs=cls.__mro__)


def accepts_any_keyword(func: Callable[..., Any]) -> bool:
    """Whether ``func`` takes ``**kwargs`` (then undeclared keys are not refused)."""
    try:
        return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations; one that cannot be resolved (a name imported only for type
    checking) counts as ``Any``."""
    try:
        return typing.get_type_hints(func)
    except Exception:
        pass
    hints = {}
    namespace = {**vars(typing), **getattr(func, "__globals__", {})}
    for name, annotation in getattr(func, "__annotations__", {}).items():
        try:
            hints[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation
        except Exception:
            hints[name] = Any
    return hints


def type_text(kind: Any) -> str:
    """A type as users read it: ``float | None``, ``list[str]``, ``'all' | 'ffn'``."""
    if kind is type(None):
        return "None"
    if kind is Ellipsis:
        return "..."
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):
        return " | ".join(type_text(arg) for arg in args)
    if origin is Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin is not None and args:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_text(arg) for arg in args)}]"
    if isinstance(kind, type):
        return kind.__name__
    return str(kind).replace("typing.", "")


# --------------------------------------------------------------------------- checking


def check_block(
    block: Mapping[str, Any] | None,
    options: Sequence[Option],
    prefix: str,
    *,
    unknown: str = "unknown key; accepted: {typed}",
    open_keys: bool = False,
) -> dict[str, Any]:
    """``block`` checked against ``options``: each value coerced to its declared type.

    A key not declared raises at ``PREFIX.KEY`` with the ``unknown`` message, whose
    ``{names}`` lists the accepted names and ``{typed}`` them with type and default (unless
    ``open_keys``, for a ``**kwargs`` component); a required option missing raises at
    ``prefix``. Keys are checked in the block's order.
    """
    declared = {option.name: option for option in options}
    checked: dict[str, Any] = {}
    for key, value in (block or {}).items():
        path = f"{prefix}.{key}" if prefix else str(key)
        option = declared.get(str(key))
        if option is None:
            if open_keys:
                checked[str(key)] = value
                continue
            names = ", ".join(sorted(declared)) or "none"
            typed = ", ".join(
                f"{o.name} ({o.annotation or 'any'} = {o.default_text()})" for o in options
            )
            problem = unknown.format(names=names, typed=typed or "no options")
            raise OptionError(problem, key_path=path)
        checked[option.name] = coerce(value, option.type, path)
    missing = [o.name for o in options if o.required and o.name not in checked]
    if missing:
        raise OptionError(f"missing required option(s): {', '.join(missing)}", key_path=prefix)
    return checked


def coerce(value: Any, kind: Any, key_path: str) -> Any:
    """``value`` as the declared type ``kind``; :class:`OptionError` at ``key_path`` if not."""
    if kind is Any or kind is _MISSING:
        return value
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):
        return _coerce_union(value, kind, args, key_path)
    if origin is Literal:
        if any(value == choice and type(value) is type(choice) for choice in args):
            return value
        raise OptionError(f"must be one of {choice_text(args)}, got {value!r}", key_path=key_path)
    if origin in (list, tuple, Sequence) or kind in (list, tuple):
        return _coerce_sequence(value, kind, origin or kind, args, key_path)
    if origin in (dict, Mapping) or kind is dict:
        return _coerce_mapping(value, kind, args, key_path)
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        return scalar(value, key_path)
    if kind is type(None) or kind is None:
        if value is None:
            return None
        raise OptionError(f"must be null, got {value!r}", key_path=key_path)
    if isinstance(kind, type) and not isinstance(value, kind):
        raise OptionError(f"must be {type_text(kind)}, got {value!r}", key_path=key_path)
    return value


def choice_text(choices: Sequence[Any]) -> str:
    """``auto, memory, disk`` (strings bare, other values as written in Python)."""
    return ", ".join(c if isinstance(c, str) else repr(c) for c in choices)


def _coerce_union(value: Any, kind: Any, args: tuple[Any, ...], key_path: str) -> Any:
    if value is None and type(None) in args:
        return None
    members = [arg for arg in args if arg is not type(None)]
    if len(members) == 1:
        return coerce(value, members[0], key_path)
    for member in members:
        try:
            return coerce(value, member, key_path)
        except OptionError:
            continue
    raise OptionError(f"must be {type_text(kind)}, got {value!r}", key_path=key_path)


def _coerce_sequence(
    value: Any, kind: Any, origin: Any, args: tuple[Any, ...], key_path: str
) -> Any:
    if isinstance(value, (str, bool, int, float)):
        value = [value]  # a lone value where a list is declared: a list of one
    if not isinstance(value, (list, tuple)):
        raise OptionError(f"must be a list ({type_text(kind)}), got {value!r}", key_path=key_path)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise OptionError(
                f"must have {len(args)} items ({type_text(kind)}), got {value!r}",
                key_path=key_path,
            )
        items = [
            coerce(v, a, f"{key_path}[{i}]")
            for i, (v, a) in enumerate(zip(value, args, strict=True))
        ]
        return tuple(items)
    item = args[0] if args else Any
    items = [coerce(v, item, f"{key_path}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


def _coerce_mapping(value: Any, kind: Any, args: tuple[Any, ...], key_path: str) -> Any:
    if not isinstance(value, Mapping):
        raise OptionError(
            f"must be a mapping ({type_text(kind)}), got {value!r}", key_path=key_path
        )
    key_kind, item_kind = args if len(args) == 2 else (Any, Any)
    return {
        coerce(k, key_kind, key_path): coerce(v, item_kind, f"{key_path}.{k}")
        for k, v in value.items()
    }


def _boolean(value: Any, key_path: str) -> bool:
    if not isinstance(value, bool):
        raise OptionError(f"must be true or false, got {value!r}", key_path=key_path)
    return value


def _integer(value: Any, key_path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(f"must be an integer, got {value!r}", key_path=key_path)
    return value


def _number(value: Any, key_path: str) -> float:
    if isinstance(value, str) and _NUMBER.match(value):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError(f"must be a number, got {value!r}", key_path=key_path)
    number = float(value)
    if math.isnan(number):
        raise OptionError(f"must be a number, got {value!r}", key_path=key_path)
    return number


def _string(value: Any, key_path: str) -> str:
    if not isinstance(value, str):
        raise OptionError(f"must be a string, got {value!r}", key_path=key_path)
    return value


_SCALARS: dict[Any, Callable[[Any, str], Any]] = {
    bool: _boolean,
    int: _integer,
    float: _number,
    str: _string,
}


# --------------------------------------------------------------------------- rules


def at_least(key_path: str, value: Any, minimum: float) -> Any:
    """``value`` if it is ``>= minimum``."""
    if not value >= minimum:
        what = "an integer" if isinstance(value, int) else "a number"
        raise OptionError(f"must be {what} >= {minimum:g}, got {value!r}", key_path=key_path)
    return value


def in_range(
    key_path: str,
    value: Any,
    low: float,
    high: float,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> Any:
    """``value`` if it lies between ``low`` and ``high`` (ends open or closed); NaN never."""
    above = value > low if open_low else value >= low
    below = value < high if open_high else value <= high
    if not (above and below):
        if isinstance(value, int) and not (open_low or open_high):
            rule = f"must be an integer {low:g}..{high:g}"
        else:
            left, right = "(" if open_low else "[", ")" if open_high else "]"
            rule = f"must be a number in {left}{low:g}, {high:g}{right}"
        raise OptionError(f"{rule}, got {value!r}", key_path=key_path)
    return value


def positive(key_path: str, value: Any, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float ``> 0`` (``>= 0`` with ``allow_zero``)."""
    number = coerce(value, float, key_path)
    if not math.isfinite(number) or (number < 0 if allow_zero else number <= 0):
        bound = ">= 0" if allow_zero else "> 0"
        raise OptionError(f"must be a number {bound}, got {value!r}", key_path=key_path)
    return number


def band(warn_path: str, abort_path: str, warn: Any, abort: Any) -> tuple[float, float]:
    """A ``(warn, abort)`` pair of positive numbers with ``warn <= abort``, named by the two
    options' key paths."""
    warn_value = positive(warn_path, warn)
    abort_value = positive(abort_path, abort)
    if warn_value > abort_value:
        abort_name = abort_path.rpartition(".")[2]
        problem = f"must not exceed {abort_name} ({abort_value:g}), got {warn_value:g}"
        raise OptionError(problem, key_path=warn_path)
    return warn_value, abort_value
