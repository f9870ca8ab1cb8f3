"""What every exporter is: a name, the edits it can hold, a writer and the consumer's loader.

An exporter never asks which edit ran: it receives the edit's integer form, what the edit's
optional ``export`` returned (:func:`invarlock.core.edit.export_form`; ``None`` for an edit
without one, such as ``noop``). Exporters stay torch-free at import (``--dry-run`` checks
formats without loading torch); each imports its libraries inside :meth:`Exporter.write` and
:meth:`Exporter.load`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from invarlock.core.errors import EXIT_MODEL, InvarlockError

__all__ = ["ExportError", "Exporter", "Source", "refuse_without_codes"]


class ExportError(InvarlockError):
    """An export could not be written or did not load back as the guarded model (exit 4)."""

    exit_code = EXIT_MODEL


@dataclass(frozen=True)
class Source:
    """Where the guarded model came from: a Hugging Face directory and/or a GGUF file."""

    model_id: str
    model_dir: Path | None = None
    gguf_path: Path | None = None

    @classmethod
    def of(cls, model_id: str, info: dict[str, Any] | None = None) -> Source:
        """The source of ``model_id``; ``info`` (``LoadedModel.info``) may name the GGUF file
        it was converted from (``gguf_path``) and the converted directory (``cache_dir``)."""
        info = info or {}
        path = Path(model_id)
        gguf = info.get("gguf_path")
        if gguf is None and path.suffix == ".gguf" and path.is_file():
            gguf = path
        directory = path if path.is_dir() else info.get("cache_dir")  # a converted GGUF
        return cls(
            model_id=model_id,
            model_dir=None if directory is None else Path(directory),
            gguf_path=None if gguf is None else Path(gguf),
        )


class Exporter(Protocol):
    """One checkpoint format."""

    #: The name ``output.format`` and ``invarlock export --format`` use.
    name: str
    #: The consumer loader the proof goes through, as the report names it.
    loader: str
    #: The directory name inside the run directory.
    dirname: str

    def refuse_edit(self, codes: Any) -> str | None:
        """Why this format cannot hold an edit whose integer form is ``codes`` (torch-free;
        ``None`` when the edit has none), or ``None``."""

    def refuse_model(self, model: Any, codes: Any, source: Source) -> str | None:
        """Why this format cannot hold this model so edited, or ``None`` (before writing)."""

    def write(self, model: Any, codes: Any, out: Path, source: Source) -> None:
        """Write the checkpoint into the directory ``out`` (created here; it does not exist yet)."""

    def load(self, out: Path, model: Any) -> Any:
        """Load ``out`` back through the consumer's own loader (``model``: the guarded one)."""


def refuse_without_codes(codes: Any) -> str | None:
    """Why a format that stores integer codes cannot hold an edit without them (``codes`` is
    ``None``: the edit has no ``export``), or ``None``."""
    if codes is not None:
        return None
    return "it stores quant_rtn integer codes and this edit has none; use the hf format"
