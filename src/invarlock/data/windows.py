"""Deterministic token windows for calibration and evaluation.

The rules (docs/evaluation.md):

* a window is ``seq_len`` consecutive tokens starting on the grid ``0, step, 2*step, ...``
  (``step`` = ``dataset.stride``, default ``seq_len``);
* the candidate starts are shuffled with ``random.Random(seed)`` and taken in that order,
  so the same text, tokenizer and settings always give the same windows in the same order;
* no two chosen windows share a token position, and no two have the same content
  (duplicates are skipped), so calibration and evaluation windows are disjoint;
* evaluation windows are chosen first; calibration windows come from the separate
  calibration text when the source has one, else from what the evaluation windows left.

Too little text is a :class:`DataError` that says how many windows the text can give.
"""

from __future__ import annotations

import hashlib
import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from invarlock.core.errors import DataError
from invarlock.data.settings import DatasetSection


@dataclass(frozen=True)
class WindowSet:
    """The evaluation and calibration windows of one run, as token-id rows."""

    eval: list[list[int]]
    calib: list[list[int]]
    seq_len: int
    fingerprint: str  # sha256 of seq_len and the evaluation windows' ids, in order

    @property
    def eval_tokens(self) -> int:
        return len(self.eval) * self.seq_len


def tokenize(tokenizer: Any, text: str) -> list[int]:
    """The token ids of ``text`` without special tokens (windows are raw text spans)."""
    encoded = tokenizer(text, add_special_tokens=False, verbose=False)
    return list(encoded["input_ids"])


def fingerprint_rows(rows: Sequence[Sequence[int]], seq_len: int) -> str:
    digest = hashlib.sha256(f"windows/v1 seq_len={seq_len} n={len(rows)};".encode())
    for row in rows:
        digest.update(array("q", row).tobytes())
    return digest.hexdigest()


def cut_windows(
    spec: DatasetSection, eval_ids: Sequence[int], calib_ids: Sequence[int] | None = None
) -> WindowSet:
    """Choose ``spec.eval_windows`` + ``spec.calib_windows`` windows (see the module rules)."""
    seen: set[tuple[int, ...]] = set()
    eval_starts = _choose(eval_ids, spec, spec.eval_windows, seen, taken=[])
    if len(eval_starts) < spec.eval_windows:
        raise _too_little(spec, "evaluation", len(eval_starts), len(eval_ids))
    same_text = calib_ids is None
    calib_source = eval_ids if same_text else calib_ids
    assert calib_source is not None
    taken = list(eval_starts) if same_text else []
    calib_starts = _choose(calib_source, spec, spec.calib_windows, seen, taken)
    if len(calib_starts) < spec.calib_windows:
        raise _too_little(spec, "calibration", len(calib_starts), len(calib_source))
    rows = [list(eval_ids[s : s + spec.seq_len]) for s in eval_starts]
    calib = [list(calib_source[s : s + spec.seq_len]) for s in calib_starts]
    return WindowSet(rows, calib, spec.seq_len, fingerprint_rows(rows, spec.seq_len))


def _choose(
    ids: Sequence[int],
    spec: DatasetSection,
    count: int,
    seen: set[tuple[int, ...]],
    taken: list[int],
) -> list[int]:
    """Up to ``count`` starts that overlap nothing in ``taken`` and repeat nothing in ``seen``."""
    if count == 0:
        return []
    starts = list(range(0, len(ids) - spec.seq_len + 1, spec.step))
    random.Random(spec.seed).shuffle(starts)
    chosen: list[int] = []
    for start in starts:
        if any(abs(start - other) < spec.seq_len for other in taken):
            continue
        content = tuple(ids[start : start + spec.seq_len])
        if content in seen:
            continue
        seen.add(content)
        taken.append(start)
        chosen.append(start)
        if len(chosen) == count:
            break
    return chosen


def _too_little(spec: DatasetSection, role: str, found: int, tokens: int) -> DataError:
    wanted = spec.eval_windows if role == "evaluation" else spec.calib_windows
    return DataError(
        f"not enough text for {wanted} {role} windows of {spec.seq_len} tokens: the "
        f"{role} text has {tokens} tokens and gives {found} distinct non-overlapping "
        f"window(s); lower dataset.{'eval' if role == 'evaluation' else 'calib'}_windows or "
        "dataset.seq_len, or use a longer text"
    )


def as_batches(rows: Sequence[Sequence[int]], batch_size: int, device: Any) -> list[Any]:
    """``rows`` as ``torch.LongTensor`` batches ``[batch, seq_len]`` on ``device``."""
    import torch

    return [
        torch.tensor(rows[i : i + batch_size], dtype=torch.long, device=device)
        for i in range(0, len(rows), batch_size)
    ]
