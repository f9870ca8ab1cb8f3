"""A plugin manager for one test: built-ins only, plus what the test registers.

No third-party entry point is autoloaded and no local ``invarlock_plugins.py`` file is read
unless the test asks (:meth:`IsolatedPlugins.use_local_files`). Everything a test registers
goes through the host's own checks and listing, exactly as an installed plugin would.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invarlock.plugins.manager import PluginManager


class IsolatedPlugins:
    """Collects a test's plugins, then builds one loaded :class:`PluginManager` from them."""

    def __init__(self) -> None:
        self._added: list[tuple[str, Any, str | None]] = []
        self._load: list[str] = []
        self._local_start: Path | None = None
        self._manager: PluginManager | None = None

    def _check_open(self) -> None:
        if self._manager is not None:
            raise RuntimeError("plugins are loaded already: register before using .manager")

    def register_guard(self, cls: type, name: str | None = None) -> str:
        """Register a ``Guard`` subclass (as its ``invarlock.guards`` entry point would);
        returns the name to put in ``guards.order``."""
        from invarlock.plugins.bindings import class_plugin

        plugin = class_plugin(cls, name)
        for added_name, added, _ in self._added:
            if getattr(added, "cls", None) is cls and added_name == plugin.name:
                return added_name  # registered already (e.g. by an earlier run_guard)
        self._check_open()
        self._added.append((plugin.name, plugin, _source_file(cls)))
        return plugin.name

    def register_adapter(self, cls: type, name: str | None = None) -> str:
        """Register a ``ModelAdapter`` subclass; returns its name (``model.adapter``)."""
        return self.register_guard(cls, name)  # class_plugin picks the kind from the base

    def register_hooks(self, plugin: ModuleType | object, name: str | None = None) -> str:
        """Register a hook-style plugin: a module or object with ``invarlock_*`` functions."""
        self._check_open()
        resolved = name or getattr(plugin, "__name__", None) or type(plugin).__qualname__
        self._added.append((resolved, plugin, _source_file(plugin)))
        return resolved

    def load_by_name(self, name: str) -> None:
        """Load an installed plugin by entry-point or module name, like ``-p NAME``."""
        self._check_open()
        self._load.append(name)

    def use_local_files(self, start: Path) -> None:
        """Also read local ``invarlock_plugins.py`` files, searching from ``start``."""
        self._check_open()
        self._local_start = Path(start)

    @property
    def manager(self) -> PluginManager:
        """The loaded plugin manager (built on first use; registration closes then)."""
        if self._manager is None:
            from invarlock.plugins.discovery import Selection
            from invarlock.plugins.manager import PluginManager
            from invarlock.plugins.settings import ENV_DISABLE_AUTOLOAD

            selection = Selection.build(
                self._load,
                env={ENV_DISABLE_AUTOLOAD: "1"},
                local_files=self._local_start is not None,
                local_start=self._local_start,
            )
            manager = PluginManager(selection)
            for name, plugin, file in self._added:
                manager.add(plugin, name, file=file)
            self._manager = manager.load()
        return self._manager

    def problems(self) -> list[str]:
        """What the host found wrong with the registered plugins (empty: all usable)."""
        return self.manager.problems()


def _source_file(obj: Any) -> str | None:
    import inspect

    try:
        return inspect.getsourcefile(obj if inspect.ismodule(obj) else _class_of(obj))
    except TypeError:
        return None


def _class_of(obj: Any) -> Any:
    return obj if isinstance(obj, type) else type(obj)
