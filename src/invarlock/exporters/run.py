"""Write the chosen formats, prove each on load, and leave only whole, proven checkpoints."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from invarlock.exporters import get_exporter
from invarlock.exporters.base import Exporter, ExportError, Source

__all__ = ["check_formats", "check_free", "export_all", "file_entries"]


def check_free(formats: Sequence[str], into: Path) -> None:
    """``ExportError`` when a format's directory already exists (it is never overwritten)."""
    for name in formats:
        target = into / get_exporter(name).dirname
        if target.exists():
            raise ExportError(f"{name}: {target} already exists; not overwritten")


def check_formats(formats: Sequence[str], model: Any, codes: Any, source: Source) -> list[Exporter]:
    """The exporters of ``formats``, or ``ExportError`` naming the first that cannot hold
    this edit on this model (nothing is written)."""
    exporters = [get_exporter(name) for name in formats]
    for exporter in exporters:
        reason = exporter.refuse_edit(codes) or exporter.refuse_model(model, codes, source)
        if reason is not None:
            raise ExportError(f"export format {exporter.name!r} refused: {reason}")
    return exporters


def export_all(
    formats: Sequence[str], model: Any, codes: Any, into: Path, source: Source
) -> list[dict[str, Any]]:
    """Write each format to ``into / <dirname>`` and prove it; return the report entries.

    ``codes`` is the edit's integer form (:func:`invarlock.core.edit.export_form` of the
    edit, its configuration and the result of applying it to ``model``), or ``None``.

    Each checkpoint is written to a hidden ``.<dirname>.partial`` directory, loaded back
    through the consumer's loader and compared with ``model``; only a bit-equal one is renamed
    into place. On any failure every directory this call created is removed and
    ``ExportError`` (exit 4) is raised.
    """
    check_free(formats, into)
    exporters = check_formats(formats, model, codes, source)
    created: list[Path] = []
    entries = []
    try:
        for exporter in exporters:
            target = into / exporter.dirname
            partial = into / f".{exporter.dirname}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            created.append(partial)
            entries.append(_export_one(exporter, model, codes, partial, target, source))
            partial.rename(target)  # the checkpoint appears whole or not at all
            created[-1] = target
    except BaseException as error:
        for path in created:
            shutil.rmtree(path, ignore_errors=True)
        if isinstance(error, Exception) and not isinstance(error, ExportError):
            raise ExportError(f"export failed: {type(error).__name__}: {error}") from error
        raise
    return entries


def _export_one(
    exporter: Exporter, model: Any, codes: Any, partial: Path, target: Path, source: Source
) -> dict[str, Any]:
    from invarlock.exporters._proof import compare

    began = time.perf_counter()
    try:
        exporter.write(model, codes, partial, source)
    except ExportError:
        raise
    except Exception as error:
        raise ExportError(
            f"{exporter.name}: writing failed: {type(error).__name__}: {error}"
        ) from error
    written = time.perf_counter()
    from invarlock.models.quiet import quiet_transformers

    try:
        with quiet_transformers(keep_warnings=True):  # no progress bars in invarlock's output
            loaded = exporter.load(partial, model)
    except Exception as error:
        raise ExportError(
            f"{exporter.name}: {exporter.loader} could not load the export:"
            f" {type(error).__name__}: {error}"
        ) from error
    loaded_at = time.perf_counter()
    proof = compare(loaded, model, exporter.loader)
    del loaded
    if not proof["bit_equal"]:
        shown = "; ".join(proof["mismatches"][:3])
        raise ExportError(
            f"{exporter.name}: loaded through {exporter.loader}, the export differs from the"
            f" guarded model ({shown}); the export was removed"
        )
    mismatches = proof.pop("mismatches")
    assert not mismatches
    return {
        "format": exporter.name,
        "path": str(target),
        "files": file_entries(partial),
        "proof": proof,
        "seconds": {
            "write": round(written - began, 3),
            "load": round(loaded_at - written, 3),
        },
    }


def file_entries(directory: Path) -> list[dict[str, Any]]:
    """``[{"name", "bytes", "sha256"}]`` of every file under ``directory``, sorted by name."""
    entries = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        entries.append(
            {
                "name": path.relative_to(directory).as_posix(),
                "bytes": path.stat().st_size,
                "sha256": digest.hexdigest(),
            }
        )
    return entries
