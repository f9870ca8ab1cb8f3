"""Plugin discovery, validation and dispatch (no torch at import time).

``PluginManager`` is the facade the CLI and the runner use; ``Selection`` says which
plugins to load or block. ``hello_guard`` is a small hook-style example plugin.
"""

from invarlock.plugins.discovery import LOCAL_PLUGIN_FILE, Selection
from invarlock.plugins.manager import PluginManager
from invarlock.plugins.records import ComponentRecord, Kind, Origin, PluginInfo, Status

__all__ = [
    "LOCAL_PLUGIN_FILE",
    "ComponentRecord",
    "Kind",
    "Origin",
    "PluginInfo",
    "PluginManager",
    "Selection",
    "Status",
]
