"""The field-by-field tables of docs/report.md, generated from the shipped JSON Schemas.

``python -m invarlock.reports.schema_doc docs/report.md`` rewrites the regions between
``<!-- schema: ID -->`` and ``<!-- /schema -->``; a test fails when they are out of date.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from invarlock.reports.validate import known_schemas, load_schema

REGION = re.compile(r"(<!-- schema: (?P<id>\S+) -->\n)(?P<body>.*?)(<!-- /schema -->)", re.DOTALL)


def field_rows(schema_id: str) -> list[tuple[str, str, bool, str]]:
    """``(path, type, required, description)`` for every documented field, depth first."""
    root = load_schema(schema_id)
    rows: list[tuple[str, str, bool, str]] = []
    _walk(root, root, "", rows)
    return rows


def render_fields(schema_id: str) -> str:
    """A Markdown table of :func:`field_rows`."""
    lines = ["| field | type | required | meaning |", "|---|---|---|---|"]
    for path, kind, required, description in field_rows(schema_id):
        text = description.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{path}` | {kind} | {'yes' if required else ''} | {text} |")
    return "\n".join(lines) + "\n"


def update(text: str) -> str:
    """``text`` with every schema region regenerated."""
    return REGION.sub(lambda m: m.group(1) + render_fields(m.group("id")) + m.group(4), text)


def regions(text: str) -> dict[str, str]:
    """Schema id → the table currently in ``text``."""
    return {m.group("id"): m.group("body") for m in REGION.finditer(text)}


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    while "$ref" in node:
        base, _, pointer = node["$ref"].partition("#")
        if base:
            root = next(load_schema(s) for s in known_schemas() if load_schema(s)["$id"] == base)
        target: Any = root
        for part in pointer.strip("/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k not in ("$ref",)}}
    return node, root


def _variants(node: dict[str, Any], root: dict[str, Any]) -> tuple[dict[str, Any], dict, bool]:
    """The object/array branch of ``oneOf [null, X]`` and whether null is allowed."""
    options = node.get("oneOf")
    if not options:
        return node, root, False
    nullable = any(o.get("type") == "null" for o in options)
    for option in options:
        if option.get("type") != "null":
            resolved, option_root = _resolve(option, root)
            merged = {**resolved, "description": node.get("description", "")}
            return merged, option_root, nullable
    return node, root, nullable


def _type_name(node: dict[str, Any], nullable: bool) -> str:
    if "const" in node:
        return f"`{node['const']}`"
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    kinds = node.get("type", "any")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    if nullable and "null" not in kinds:
        kinds.append("null")
    return " \\| ".join(kinds)


def _walk(node: dict[str, Any], root: dict[str, Any], prefix: str, rows: list) -> None:
    node, root = _resolve(node, root)
    required = set(node.get("required", []))
    for name, child in node.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        child, child_root = _resolve(child, root)
        child, child_root, nullable = _variants(child, child_root)
        rows.append(
            (path, _type_name(child, nullable), name in required, child.get("description", ""))
        )
        _walk(child, child_root, path, rows)
        items = child.get("items")
        if isinstance(items, dict):
            item, item_root = _resolve(items, child_root)
            if item.get("properties"):
                _walk(item, item_root, f"{path}[]", rows)
    for part in node.get("allOf", []):
        _walk(part, root, prefix, rows)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path("docs/report.md")
    path.write_text(update(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
