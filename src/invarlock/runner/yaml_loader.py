"""YAML for config files that no input can take down.

:func:`load_yaml` reads with PyYAML's safe loader and adds bounds: the file must be UTF-8
(the error names the line of the first bad byte), at most :data:`MAX_CONFIG_BYTES`, and
aliases may neither refer to themselves nor expand the document beyond a budget
proportional to what was written (an alias "billion laughs" is refused in milliseconds
instead of eating gigabytes). Every failure is a :class:`ConfigError` (exit 2) with a line.
"""

from __future__ import annotations

from typing import Any

import yaml

from invarlock.core.errors import ConfigError

#: Larger config files are refused (a config is a few hundred bytes).
MAX_CONFIG_BYTES = 1024**2
#: Aliases may expand a document to twice its written size plus this many nodes/characters.
EXPANSION_ALLOWANCE = 10_000


def decode_config(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text; refuse other encodings and oversized files with a line."""
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{source}: config is {len(data)} bytes; the limit is {MAX_CONFIG_BYTES} bytes"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{source}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the config as UTF-8"
        ) from None


def load_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """The document in ``text`` and its node tree (for line numbers); bounded, safe."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: config is longer than {MAX_CONFIG_BYTES} characters")
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a control character
        line = text[: exc.position].count("\n") + 1
        raise ConfigError(
            f"{source}:{line}: invalid YAML: control character #x{exc.character:04x} is not allowed"
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_expansion(node, 2 * len(text) + EXPANSION_ALLOWANCE, source)
        return loader.construct_document(node), node
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise ConfigError(f"{source}:{line}: invalid YAML: {exc.reason}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a date like 2024-02-30
        raise ConfigError(f"{source}: invalid YAML value: {exc}") from None
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, budget: int, source: str) -> None:
    """Refuse recursive aliases and documents whose aliases expand beyond ``budget``."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ConfigError(
                f"{source}:{node.start_mark.line + 1}: invalid YAML: a recursive alias "
                "(an anchor used inside itself)"
            )
        open_nodes.add(key)
        if isinstance(node, yaml.ScalarNode):
            total = 1 + len(node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        else:
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        open_nodes.discard(key)
        if total > budget:
            raise ConfigError(
                f"{source}:{node.start_mark.line + 1}: invalid YAML: aliases expand the "
                f"config beyond {budget} nodes and characters"
            )
        sizes[key] = total
        return total

    size(root)
