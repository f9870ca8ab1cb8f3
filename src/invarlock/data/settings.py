"""The ``dataset:`` section of a run configuration, validated into a :class:`DatasetSection`.

Errors name the file, the line and the key path, like the rest of the config loader. This
module imports neither torch nor transformers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from invarlock.core.options import SectionReader, at_least, coerce

Source = Literal["bundled", "text", "jsonl", "hf"]
SOURCES: tuple[str, ...] = get_args(Source)
DATASET_KEYS = (
    "source",
    "path",
    "field",
    "name",
    "split",
    "eval_text",
    "calib_text",
    "seq_len",
    "stride",
    "eval_windows",
    "calib_windows",
    "seed",
)


@dataclass(frozen=True)
class DatasetSection:
    """Where the text comes from and how it is cut into windows (see docs/evaluation.md)."""

    source: str = "bundled"
    path: str | None = None
    field: str = "text"
    name: str | None = None
    split: str = "train"
    eval_text: str = "persuasion"
    calib_text: str = "northanger_abbey"
    seq_len: int = 256
    stride: int | None = None
    eval_windows: int = 12
    calib_windows: int = 8
    seed: int = 0

    @property
    def step(self) -> int:
        """The distance between the starts of two candidate windows."""
        return self.stride or self.seq_len

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def int_key(
    section: Mapping[str, Any],
    prefix: str,
    key: str,
    default: int | None,
    minimum: int,
    nullable: bool = False,
) -> int | None:
    """An integer ``>= minimum`` (or ``None`` when ``nullable``) at ``prefix.key``."""
    path = f"{prefix}.{key}"
    value = coerce(section.get(key, default), int | None if nullable else int, path)
    return None if value is None else at_least(path, value, minimum)


def parse_dataset(check: SectionReader, data: Mapping[str, Any]) -> DatasetSection | None:
    """The validated ``dataset:`` section; ``None`` when neither ``dataset:`` nor ``eval:``
    is present (such a run has no dataset: guards get ``calib=None``, nothing is evaluated)."""
    if data.get("dataset") is None and data.get("eval") is None:
        return None
    raw = check.mapping(data, "dataset")
    check.keys(raw, "dataset", DATASET_KEYS)
    source = check.value(raw, "dataset", "source", Source, "bundled")
    defaults = DatasetSection()
    path = raw.get("path")
    if source in ("text", "jsonl") and not (isinstance(path, str) and path.strip()):
        raise check.fail("dataset.path", f"source {source!r} needs a file path, got {path!r}")
    name = raw.get("name")
    if source == "hf" and not (isinstance(name, str) and name.strip()):
        raise check.fail("dataset.name", f"source 'hf' needs a dataset name, got {name!r}")
    if name is not None and not isinstance(name, str):
        raise check.fail("dataset.name", f"must be a string, got {name!r}")
    section = DatasetSection(
        source=source,
        path=path if isinstance(path, str) else None,
        field=check.string(raw, "dataset", "field", defaults.field),
        name=name,
        split=check.string(raw, "dataset", "split", defaults.split),
        eval_text=check.string(raw, "dataset", "eval_text", defaults.eval_text),
        calib_text=check.string(raw, "dataset", "calib_text", defaults.calib_text),
        seq_len=int_key(raw, "dataset", "seq_len", defaults.seq_len, 2) or 0,
        stride=int_key(raw, "dataset", "stride", None, 1, nullable=True),
        eval_windows=int_key(raw, "dataset", "eval_windows", defaults.eval_windows, 2) or 0,
        calib_windows=int_key(raw, "dataset", "calib_windows", defaults.calib_windows, 0) or 0,
        seed=int_key(raw, "dataset", "seed", defaults.seed, 0) or 0,
    )
    if section.path is not None and source not in ("text", "jsonl"):
        raise check.fail("dataset.path", f"is for sources 'text' and 'jsonl', not {source!r}")
    return section
