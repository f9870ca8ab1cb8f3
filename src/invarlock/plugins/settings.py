"""Environment variables that steer plugin loading (cheap to import: ``os`` only)."""

from __future__ import annotations

import os
from collections.abc import Mapping

ENV_DISABLE_AUTOLOAD = "INVARLOCK_DISABLE_PLUGIN_AUTOLOAD"
ENV_PLUGINS = "INVARLOCK_PLUGINS"
ENV_DEBUG_TRACE = "INVARLOCK_DEBUG_TRACE"

_TRUE = {"1", "true", "yes", "on"}


def env_flag(name: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether environment variable ``name`` is set to 1/true/yes/on."""
    value = (os.environ if env is None else env).get(name, "")
    return value.strip().lower() in _TRUE


def debug_trace_enabled(env: Mapping[str, str] | None = None) -> bool:
    return env_flag(ENV_DEBUG_TRACE, env)
