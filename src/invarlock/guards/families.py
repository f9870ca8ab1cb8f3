"""Families of weights (attention, MLP, embeddings) judged with their own bands.

A weight's family is read from its parameter name, which every transformers architecture
spells with a few well-known words (``attn``/``q_proj``, ``mlp``/``fc``/``up_proj``,
``embed``/``wte``/``lm_head``). Anything else is ``other``.
"""

from __future__ import annotations

import re

FAMILIES = ("attention", "mlp", "embeddings", "other")

_WORDS = (
    ("embeddings", re.compile(r"embed|(^|\.)(wte|wpe|lm_head|shared)(\.|$)")),
    ("attention", re.compile(r"attn|attention|query|key|value|(^|\.)(q|k|v|o|qkv|out)_proj(\.|$)")),
    (
        "mlp",
        re.compile(r"mlp|ffn|feed_forward|(^|\.)(c_fc|fc\d*|gate_proj|up_proj|down_proj)(\.|$)"),
    ),
)


def weight_family(name: str) -> str:
    """``attention``, ``mlp``, ``embeddings`` or ``other`` for a parameter name."""
    lowered = name.lower()
    for family, pattern in _WORDS:
        if pattern.search(lowered):
            return family
    return "other"
