"""Where the evaluation and calibration text comes from: the bundled corpus (default), a
local text file, a local JSONL file, or a Hugging Face dataset (downloads opt-in).

:func:`read_texts` returns the evaluation text and, for the bundled corpus, a separate
calibration text; single-text sources return ``None`` for it and the windows are then cut
from disjoint parts of the one text. Every failure is a :class:`DataError` (exit code 4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from invarlock.core.errors import DataError
from invarlock.data.settings import DatasetSection


@dataclass(frozen=True)
class SourceTexts:
    """The text to evaluate on and, when the source has one, a separate calibration text."""

    eval_text: str
    calib_text: str | None
    label: str


def read_texts(spec: DatasetSection) -> SourceTexts:
    """Read the texts ``spec`` names (see the module docstring)."""
    if spec.source == "bundled":
        return _bundled(spec)
    if spec.source == "text":
        path = _existing(spec.path)
        return SourceTexts(_read(path), None, f"text:{path}")
    if spec.source == "jsonl":
        path = _existing(spec.path)
        return SourceTexts(_jsonl(path, spec.field), None, f"jsonl:{path}[{spec.field}]")
    if spec.source == "hf":
        return SourceTexts(_hf(spec), None, f"hf:{spec.name}[{spec.split}.{spec.field}]")
    raise DataError(f"unknown dataset source {spec.source!r}")


def _bundled(spec: DatasetSection) -> SourceTexts:
    try:
        from invarlock.data.corpus import CORPUS_NAMES, corpus_text
    except ImportError as exc:  # pragma: no cover - the corpus ships with the package
        raise DataError(f"the bundled corpus is not installed: {exc}") from exc
    for key, name in (("eval_text", spec.eval_text), ("calib_text", spec.calib_text)):
        if name not in CORPUS_NAMES:
            raise DataError(
                f"dataset.{key}: no bundled text {name!r}; choose one of {', '.join(CORPUS_NAMES)}"
            )
    calib = None if spec.calib_text == spec.eval_text else corpus_text(spec.calib_text)
    label = f"bundled:{spec.eval_text}+{spec.calib_text}"
    return SourceTexts(corpus_text(spec.eval_text), calib, label)


def _existing(path_text: str | None) -> Path:
    path = Path(path_text or "")
    if not path.is_file():
        raise DataError(f"dataset.path: no such file: {path}")
    return path


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"dataset.path: {path} is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise DataError(f"dataset.path: cannot read {path}: {exc.strerror or exc}") from None


def _jsonl(path: Path, field: str) -> str:
    """The ``field`` strings of every record, joined by blank lines."""
    texts = []
    for number, line in enumerate(_read(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
        if not isinstance(record, dict) or field not in record:
            raise DataError(f"{path}:{number}: record has no field {field!r} (dataset.field)")
        value = record[field]
        if not isinstance(value, str):
            raise DataError(
                f"{path}:{number}: field {field!r} must be a string, got {type(value).__name__}"
            )
        texts.append(value)
    if not texts:
        raise DataError(f"{path}: no records")
    return "\n\n".join(texts)


def _hf(spec: DatasetSection) -> str:
    """A Hugging Face dataset split's ``field`` column, joined by blank lines (network opt-in)."""
    from invarlock.adapters.hf_loading import network_allowed

    if not network_allowed():
        raise DataError(
            f"dataset.source 'hf' downloads {spec.name!r} from the Hugging Face hub; downloads "
            "are off. Set INVARLOCK_ALLOW_NETWORK=1 to allow them, or use source 'bundled', "
            "'text' or 'jsonl'"
        )
    try:
        import datasets
    except ImportError:
        raise DataError(
            "dataset.source 'hf' needs the 'datasets' package: pip install datasets"
        ) from None
    try:
        rows = datasets.load_dataset(spec.name, split=spec.split)
        column = rows[spec.field]
    except Exception as exc:  # any loader failure is one readable data error
        raise DataError(
            f"cannot load dataset {spec.name!r} split {spec.split!r} field {spec.field!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return "\n\n".join(text for text in column if isinstance(text, str) and text.strip())
