"""Convert a GGUF file once into a cached Hugging Face directory; later loads read the cache.

Layout: ``<cache root>/models/<name>-<sha256[:12]>/`` holds ``config.json``,
``model.safetensors``, the tokenizer files and :data:`MANIFEST` (the source file, its size and
sha256, the versions that converted it). The key is the GGUF file's content hash, so a changed
file never reuses a stale entry, and superseded entries of the same file are removed.

The entry is built in a temporary sibling directory and renamed into place: a conversion that
fails or is interrupted leaves no half entry, and of two concurrent conversions one wins the
rename and the other discards its copy. Temporary directories of processes that died
(``kill -9``) are removed by the next conversion.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from invarlock.core.cache import cache_root
from invarlock.core.errors import ModelLoadError

#: The manifest file of a cache entry; written last, before the entry is renamed into place.
MANIFEST = "invarlock-manifest.json"
#: Bumped when the layout of an entry changes; older entries are then converted again.
CACHE_FORMAT = 1

_TMP_PREFIX = ".tmp-"
_digests: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class CachedModel:
    """A usable cache entry; ``converted`` is true when this call built it."""

    path: Path
    manifest: dict[str, Any]
    converted: bool

    @property
    def sha256(self) -> str:
        return str(self.manifest["source"]["sha256"])


def models_dir() -> Path:
    """``<cache root>/models``: where converted models live."""
    return cache_root() / "models"


def file_sha256(path: Path) -> str:
    """sha256 of ``path``, remembered for this process while its size and mtime stay put."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        _digests[key] = digest.hexdigest()
    return _digests[key]


def entry_name(gguf_path: Path, sha256: str, name: str | None = None) -> str:
    """``<name or file stem, slugged>-<sha256[:12]>``."""
    slug = re.sub(r"[^a-z0-9.]+", "-", (name or gguf_path.stem).lower()).strip("-.") or "model"
    return f"{slug[:64]}-{sha256[:12]}"


def read_manifest(entry: Path) -> dict[str, Any] | None:
    """The manifest of ``entry``, or ``None`` when it has none or an unreadable one."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _usable(entry: Path, sha256: str) -> dict[str, Any] | None:
    manifest = read_manifest(entry)
    if (
        manifest is None
        or manifest.get("format") != CACHE_FORMAT
        or manifest.get("source", {}).get("sha256") != sha256
        or not (entry / "config.json").is_file()
        or not (entry / "model.safetensors").is_file()
    ):
        return None
    return manifest


def cached_gguf(gguf_path: Path, name: str | None = None) -> CachedModel:
    """The cache entry for ``gguf_path``, converting the file first when there is none.

    ``name`` is the embedded model's config name, if the file is one (it names the entry and
    goes into the manifest). Raises :class:`ModelLoadError` when the conversion fails.
    """
    gguf_path = gguf_path.resolve()
    sha256 = file_sha256(gguf_path)
    entry = models_dir() / entry_name(gguf_path, sha256, name)
    manifest = _usable(entry, sha256)
    if manifest is not None:
        return CachedModel(entry, manifest, converted=False)
    manifest = _convert_into(entry, gguf_path, sha256, name)
    return CachedModel(entry, manifest, converted=True)


def _convert_into(entry: Path, gguf_path: Path, sha256: str, name: str | None) -> dict[str, Any]:
    from invarlock.models.convert import convert_gguf
    from invarlock.models.progress import conversion_display, display_console

    root = entry.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelLoadError(f"cannot create the model cache {root}: {exc}") from exc
    _remove_abandoned(root)
    size = gguf_path.stat().st_size
    title = (
        f"Converting {gguf_path.name} ({size / 1e6:.0f} MB) once into the cache {entry} "
        "(later runs load it in seconds)"
    )
    work = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", dir=root))
    try:
        started = time.perf_counter()
        with conversion_display(title) as display:
            facts = convert_gguf(gguf_path, work, display)
        seconds = time.perf_counter() - started
        manifest = _manifest(gguf_path, sha256, size, name, facts, seconds, display.timings)
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _publish(work, entry, sha256)
    except OSError as exc:
        raise ModelLoadError(f"could not write the model cache entry {entry}: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _remove_superseded(entry, gguf_path)
    display_console().print(
        f"Converted {gguf_path.name} in {seconds:.1f} s: {entry}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    return _usable(entry, sha256) or manifest


def _publish(work: Path, entry: Path, sha256: str) -> None:
    """Rename ``work`` to ``entry``; an existing usable entry (a concurrent run's) wins."""
    try:
        os.rename(work, entry)
        return
    except OSError:
        if not entry.exists():
            raise
    if _usable(entry, sha256) is not None:
        return  # a concurrent run published the same conversion first
    # A stale or broken entry under the same name: move it aside, then take its place.
    aside = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-old-", dir=entry.parent))
    os.rename(entry, aside / entry.name)
    os.rename(work, entry)
    shutil.rmtree(aside, ignore_errors=True)


def _remove_abandoned(root: Path) -> None:
    """Remove temporary directories whose converting process no longer runs."""
    for work in root.glob(f"{_TMP_PREFIX}*"):
        pid = work.name[len(_TMP_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(work, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_superseded(entry: Path, gguf_path: Path) -> None:
    """Remove other entries converted from the same file path (it has changed since)."""
    for other in entry.parent.iterdir():
        if other == entry or other.name.startswith(_TMP_PREFIX) or not other.is_dir():
            continue
        manifest = read_manifest(other)
        if manifest is not None and manifest.get("source", {}).get("path") == str(gguf_path):
            shutil.rmtree(other, ignore_errors=True)


def _manifest(
    gguf_path: Path,
    sha256: str,
    size: int,
    name: str | None,
    facts: dict[str, Any],
    seconds: float,
    steps: dict[str, float],
) -> dict[str, Any]:
    from invarlock.models.embedded import EMBEDDED_MODELS

    embedded = EMBEDDED_MODELS.get(name or "")
    return {
        "format": CACHE_FORMAT,
        "name": name,
        "source": {
            "path": str(gguf_path),
            "file": gguf_path.name,
            "bytes": size,
            "sha256": sha256,
            "package": _distribution(embedded.distribution) if embedded else None,
        },
        "model": facts,
        "converted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "conversion_s": round(seconds, 3),
        "steps_s": steps,
        "versions": {
            dist: (_distribution(dist) or {}).get("version")
            for dist in ("invarlock", "transformers", "torch", "gguf", "safetensors")
        },
    }


def _distribution(dist: str) -> dict[str, str] | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {"name": dist, "version": version(dist)}
    except PackageNotFoundError:
        return None
