"""Write a real installed distribution (``.dist-info`` with ``entry_points.txt``) into a
directory, as ``pip install --target`` would: put the directory on ``sys.path`` (or
``PYTHONPATH``) and ``importlib.metadata`` finds its entry points like any other.
"""

from __future__ import annotations

import base64
import hashlib
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path


def write_distribution(
    site_dir: Path,
    name: str,
    *,
    version: str = "0.1.0",
    entry_points: Mapping[str, Mapping[str, str]] | None = None,
    files: Mapping[str, str] | None = None,
    requires: tuple[str, ...] = (),
) -> Path:
    """Install distribution ``name`` into ``site_dir``; return its ``.dist-info`` path.

    ``entry_points`` maps group → {entry-point name: "module:attr"}; ``files`` maps paths
    relative to ``site_dir`` to their (dedented) text, e.g. ``{"my_plugin/__init__.py": ""}``.
    """
    site_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for relative, text in (files or {}).items():
        path = site_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        written.append(path)

    normalized = re.sub(r"[-_.]+", "_", name)
    dist_info = site_dir / f"{normalized}-{version}.dist-info"
    dist_info.mkdir(exist_ok=True)
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        *(f"Requires-Dist: {r}" for r in requires),
    ]
    (dist_info / "METADATA").write_text("\n".join(metadata) + "\n", encoding="utf-8")
    (dist_info / "INSTALLER").write_text("invarlock.testing\n", encoding="utf-8")
    lines: list[str] = []
    for group, points in (entry_points or {}).items():
        lines.append(f"[{group}]")
        lines.extend(f"{ep_name} = {value}" for ep_name, value in points.items())
        lines.append("")
    (dist_info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    written += [dist_info / n for n in ("METADATA", "INSTALLER", "entry_points.txt")]
    record = [_record_line(site_dir, p) for p in written]
    record.append(f"{dist_info.name}/RECORD,,")
    (dist_info / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")
    return dist_info


def _record_line(site_dir: Path, path: Path) -> str:
    data = path.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path.relative_to(site_dir).as_posix()},sha256={digest},{len(data)}"
