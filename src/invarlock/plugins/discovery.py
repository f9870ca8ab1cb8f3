"""Where plugins come from: entry points, ``-p``/env/config selections and local files.

Load order (documented in docs/plugins.md): built-in entry points → third-party entry
points → plugins named with ``-p``/``INVARLOCK_PLUGINS``/``plugins.load`` → local plugin files.
One plugin name works everywhere: an entry point's name, a module's dotted name, or
``local:<path relative to the project root>`` for a local plugin file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from invarlock.plugins.settings import ENV_DISABLE_AUTOLOAD, ENV_PLUGINS, env_flag

GUARD_GROUP = "invarlock.guards"
ADAPTER_GROUP = "invarlock.adapters"
HOOKS_GROUP = "invarlock.hooks"
EVALUATOR_GROUP = "invarlock.evaluators"
EDIT_GROUP = "invarlock.edits"  # not supported: reported, never loaded
ENTRY_POINT_GROUPS = (ADAPTER_GROUP, GUARD_GROUP, EVALUATOR_GROUP, HOOKS_GROUP, EDIT_GROUP)

BUILTIN_DISTRIBUTION = "invarlock"
LOCAL_PLUGIN_FILE = "invarlock_plugins.py"
#: A directory holding one of these is a project root; local files above it are ignored.
PROJECT_ROOT_MARKERS = (".git", "pyproject.toml", "invarlock.toml")


@dataclass
class Selection:
    """Which plugins to load and which to block, merged from flags, environment and config."""

    load: list[str] = field(default_factory=list)
    block: dict[str, str] = field(default_factory=dict)  # name -> who blocked it
    autoload: bool = True
    local_files: bool = True
    local_start: Path | None = None
    strict: bool = False

    @classmethod
    def build(
        cls,
        plugin_args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        config_load: Iterable[str] = (),
        config_block: Iterable[str] = (),
        local_files: bool = True,
        local_start: Path | None = None,
        strict: bool = False,
    ) -> Selection:
        env = os.environ if env is None else env
        selection = cls(
            autoload=not env_flag(ENV_DISABLE_AUTOLOAD, env),
            local_files=local_files,
            local_start=local_start,
            strict=strict,
        )
        for name in env.get(ENV_PLUGINS, "").split(","):
            selection.add_load(name.strip())
        for name in config_load:
            selection.add_load(name)
        for name in config_block:
            selection.block.setdefault(name, "config plugins.block")
        for arg in plugin_args:
            if arg.startswith("no:"):
                selection.block.setdefault(arg[3:], f"-p {arg}")
            else:
                selection.add_load(arg)
        return selection

    def add_load(self, name: str) -> None:
        if name and name not in self.load:
            self.load.append(name)

    def block_reason(self, name: str) -> str | None:
        return self.block.get(name)


@dataclass(frozen=True)
class EntryPointSpec:
    """An entry point in one of our groups, with the distribution that declares it."""

    group: str
    name: str
    value: str
    distribution: str | None
    distribution_version: str | None
    entry_point: metadata.EntryPoint = field(compare=False, repr=False)

    @property
    def builtin(self) -> bool:
        return normalize_dist(self.distribution) == BUILTIN_DISTRIBUTION

    @property
    def module(self) -> str:
        return self.value.split(":", 1)[0].strip()


def normalize_dist(name: str | None) -> str | None:
    return None if name is None else name.lower().replace("_", "-").replace(".", "-")


def iter_entry_points(groups: Sequence[str] = ENTRY_POINT_GROUPS) -> list[EntryPointSpec]:
    """All entry points in ``groups``, one per (group, name, distribution), sorted."""
    seen: set[tuple[str, str, str | None]] = set()
    specs: list[EntryPointSpec] = []
    for group in groups:
        for ep in metadata.entry_points(group=group):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            key = (group, ep.name, normalize_dist(dist_name))
            if key in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(key)
            specs.append(
                EntryPointSpec(
                    group=group,
                    name=ep.name,
                    value=ep.value,
                    distribution=dist_name,
                    distribution_version=dist.version if dist is not None else None,
                    entry_point=ep,
                )
            )
    specs.sort(key=lambda s: (not s.builtin, s.group, s.name, s.distribution or ""))
    return specs


def find_project_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` that holds a project-root marker."""
    for directory in (start, *start.parents):
        if any((directory / marker).exists() for marker in PROJECT_ROOT_MARKERS):
            return directory
    return None


def find_local_plugin_files(start: Path) -> tuple[list[Path], Path]:
    """Local plugin files for a config in ``start``: outermost first, never above the root.

    The search covers ``start`` and its parents up to the project root (the nearest
    directory holding ``.git``, ``pyproject.toml`` or ``invarlock.toml``). Without a project
    root only ``start`` itself is searched. Returns the files and the root used.
    """
    start = start.resolve()
    root = find_project_root(start) or start
    chain = [start, *start.parents]
    directories = chain[: chain.index(root) + 1]
    files = [d / LOCAL_PLUGIN_FILE for d in reversed(directories)]
    return [f for f in files if f.is_file()], root


def local_plugin_name(path: Path, root: Path) -> str:
    """The plugin name of a local file: ``local:<path relative to the project root>``."""
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        relative = Path(path.name)
    return f"local:{relative.as_posix()}"
