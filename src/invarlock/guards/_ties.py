"""Tied weights: parameter names that share storage, and the ties a model declares.

Actual ties are found by :func:`invarlock.core.structure.storage_key` over
``named_parameters(remove_duplicate=False)``, so every alias of a tied parameter is seen.
Declared ties (transformers' ``all_tied_weights_keys`` / ``_tied_weights_keys``, or an
adapter's ``describe(model)["tied_weights"]``) are cross-checked against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _input_embedding_name(model: Any) -> str | None:
    getter = getattr(model, "get_input_embeddings", None)
    embedding = getter() if callable(getter) else None
    weight = getattr(embedding, "weight", None)
    for name, param in model.named_parameters():
        if param is weight:
            return name
    return None


def _declared_by_transformers(model: Any) -> list[list[str]]:
    expanded = getattr(model, "all_tied_weights_keys", None)  # transformers >= 5
    if isinstance(expanded, Mapping):
        return [[str(target), str(source)] for target, source in expanded.items()]
    keys = getattr(model, "_tied_weights_keys", None)
    config = getattr(model, "config", None)
    if not keys or not getattr(config, "tie_word_embeddings", False):
        return []
    if isinstance(keys, Mapping):
        return [[str(target), str(source)] for target, source in keys.items()]
    source = _input_embedding_name(model)  # transformers 4: names tied to the input embedding
    return [[str(target), source] for target in keys] if source else []


def declared_ties(model: Any, description: Mapping[str, Any] | None) -> list[list[str]]:
    """Tie groups the model (transformers attributes) and the adapter declare."""
    declared = _declared_by_transformers(model)
    for group in (description or {}).get("tied_weights") or []:
        declared.append([str(name) for name in group])
    return declared


def declared_tie_notes(model: Any, groups: list[list[str]], declared: list[list[str]]) -> list[str]:
    """Declared ties that are not actual ties (notes for ``prepare``; not checked later)."""
    params = dict(model.named_parameters(remove_duplicate=False))
    group_of = {name: index for index, names in enumerate(groups) for name in names}
    notes = []
    for names in declared:
        missing = [name for name in names if name not in params]
        if missing:
            notes.append(f"declared tied weight {missing[0]!r} is not a parameter")
        elif len({group_of.get(name, name) for name in names}) > 1:
            notes.append(f"declared tied weights {names} do not share storage; not checked")
    return notes
