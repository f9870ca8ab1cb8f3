"""Check a report or plan document against the JSON Schema its ``schema`` key names.

The schemas ship as package data (``invarlock/reports/schemas/<kind>.v<N>.json``). Every
version ever written keeps its file, so an old report validates against its own schema; a
document from a newer invarlock gets a "written by version X" message instead of a
misleading list of unknown fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from invarlock import __version__
from invarlock.core.errors import InvarlockError

SCHEMA_PREFIX = "invarlock."


class InvalidReport(InvarlockError):
    """A report or plan that does not match its schema (exit code 2)."""


@dataclass(frozen=True)
class Problem:
    """One place where a document breaks its schema."""

    path: str  # JSON path, e.g. ``$.guards[3].action``
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def schema_file(schema_id: str) -> str:
    """``invarlock.report/v1`` → ``report.v1.json``."""
    kind, _, version = schema_id.removeprefix(SCHEMA_PREFIX).partition("/")
    return f"{kind}.{version}.json"


def known_schemas() -> tuple[str, ...]:
    """The schema ids this invarlock can validate, e.g. ``("invarlock.plan/v1", ...)``."""
    names = []
    for entry in resources.files("invarlock.reports").joinpath("schemas").iterdir():
        kind, _, rest = entry.name.partition(".")
        if rest.endswith(".json"):
            names.append(f"{SCHEMA_PREFIX}{kind}/{rest.removesuffix('.json')}")
    return tuple(sorted(names))


@cache
def load_schema(schema_id: str) -> dict[str, Any]:
    """The JSON Schema (a dict) for ``schema_id``; KeyError when this invarlock lacks it."""
    if schema_id not in known_schemas():
        raise KeyError(schema_id)
    path = resources.files("invarlock.reports").joinpath("schemas").joinpath(schema_file(schema_id))
    return json.loads(path.read_text(encoding="utf-8"))


def problems(document: Any) -> list[Problem]:
    """Everything wrong with ``document``, the most relevant first; empty when it is valid."""
    if not isinstance(document, dict):
        return [Problem("$", f"expected a JSON object, got {type(document).__name__}")]
    schema_id = document.get("schema")
    if not isinstance(schema_id, str) or not schema_id.startswith(SCHEMA_PREFIX):
        return [Problem("$.schema", "missing: not an invarlock report or plan")]
    if schema_id not in known_schemas():
        return [Problem("$.schema", _unknown_version(schema_id, document))]
    from jsonschema.exceptions import best_match, relevance

    validator = _validator(schema_id)
    errors = sorted(validator.iter_errors(document), key=relevance, reverse=True)
    if not errors:
        return []
    first = best_match(errors)
    found = [_problem(first)]
    found += [_problem(e) for e in errors if e is not first]
    return found


def check(document: Any, source: str = "document") -> None:
    """Raise :class:`InvalidReport` naming the first invalid field unless ``document`` is valid."""
    found = problems(document)
    if found:
        more = f" (and {len(found) - 1} more problem(s))" if len(found) > 1 else ""
        raise InvalidReport(f"{source} is not valid: {found[0]}{more}")


def _unknown_version(schema_id: str, document: dict[str, Any]) -> str:
    versions = document.get("versions")
    writer = versions.get("invarlock") if isinstance(versions, dict) else None
    by = f"invarlock {writer}" if isinstance(writer, str) else "another invarlock version"
    readable = ", ".join(known_schemas())
    return (
        f"{schema_id!r} was written by {by}; this invarlock ({__version__}) reads {readable}. "
        "Validate it with the invarlock version that wrote it."
    )


def _problem(error: Any) -> Problem:
    return Problem(error.json_path, _short(error.message))


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


@cache
def _validator(schema_id: str) -> Any:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    registry: Registry = Registry()
    for known in known_schemas():
        schema = load_schema(known)
        registry = registry.with_resource(schema["$id"], Resource.from_contents(schema))
    return Draft202012Validator(load_schema(schema_id), registry=registry)
