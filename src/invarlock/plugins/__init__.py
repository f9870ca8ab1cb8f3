"""Plugin discovery, validation and dispatch (no torch at import time).

``PluginManager`` is the facade the CLI and the runner use (loading: ``loading``,
components: ``registry``, built-ins: ``builtin``); ``Selection`` says which plugins to
load or block. Names are imported on first use, so ``invarlock --help`` does not pay for
pluggy and entry points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from invarlock.core.lazy import lazy_exports

if TYPE_CHECKING:
    from invarlock.plugins.discovery import LOCAL_PLUGIN_FILE, Selection
    from invarlock.plugins.manager import PluginManager
    from invarlock.plugins.records import ComponentRecord, Kind, Origin, PluginInfo, Status

_WHERE = {
    "LOCAL_PLUGIN_FILE": "invarlock.plugins.discovery",
    "Selection": "invarlock.plugins.discovery",
    "PluginManager": "invarlock.plugins.manager",
    "ComponentRecord": "invarlock.plugins.records",
    "Kind": "invarlock.plugins.records",
    "Origin": "invarlock.plugins.records",
    "PluginInfo": "invarlock.plugins.records",
    "Status": "invarlock.plugins.records",
}
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

__getattr__ = lazy_exports(__name__, _WHERE)
