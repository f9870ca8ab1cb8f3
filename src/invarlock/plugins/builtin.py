"""The built-in plugins: modules that register invarlock's own components through the same
``invarlock_register_*`` hooks as third-party plugins (as pytest's and llm's default plugins
do). They are loaded first, from this tuple, whatever the installed package metadata says.

A built-in component is blocked by its own name (``-p no:spectral``), and a whole module by
its module name.
"""

from __future__ import annotations

BUILTIN_PLUGINS: tuple[str, ...] = (
    "invarlock.adapters.plugin",
    "invarlock.guards.plugin",
    "invarlock.evaluation.plugin",
)
