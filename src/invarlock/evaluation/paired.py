"""One run's paired evaluation: windows → calibration batches → baseline → edited → verdict.

The runner calls, in pipeline order: :meth:`PairedEvaluation.prepare` (after the load),
:attr:`~PairedEvaluation.calib` (handed to the guards), :meth:`~PairedEvaluation.run_baseline`
(on the unedited model, or read from the baseline cache) and
:meth:`~PairedEvaluation.run_edited` (after the edit), whose :class:`EvaluationResult` is the
report's ``evaluation`` section and carries the gate's verdict.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from invarlock.core.errors import DataError, PluginError
from invarlock.core.evaluator import Evaluator
from invarlock.data.settings import DatasetSection
from invarlock.data.sources import read_texts
from invarlock.data.windows import WindowSet, as_batches, cut_windows, tokenize
from invarlock.evaluation.cache import BaselineCache, baseline_key, tokenizer_fingerprint
from invarlock.evaluation.sequence import MIN_WINDOWS, SEQUENCE_METHOD, sequence_bounds
from invarlock.evaluation.settings import EvalSection
from invarlock.evaluation.stats import BOOTSTRAP_METHOD, RatioInterval, perplexity, ratio_interval

if TYPE_CHECKING:
    from invarlock.models.fingerprint import Fingerprint

#: ``progress(phase, windows_done, windows_total, tokens_done)``, called after each batch.
Progress = Callable[[str, int, int, int], None]


def _no_progress(phase: str, done: int, total: int, tokens: int) -> None:
    return None


@dataclass
class EvaluationResult:
    """The numbers of one paired evaluation; :meth:`to_dict` is ``report.json``'s section."""

    metric: str
    dataset: dict[str, Any]
    windows_planned: int
    pairs: list[tuple[float, float]]
    seq_len: int
    baseline_cached: bool
    baseline_tokens: int
    ratio: RatioInterval
    sequence: tuple[float, float] | None
    early_stop: bool
    stopped_at: int | None
    stop_reason: str | None
    max_ppl_ratio: float | None
    gate_on: str
    duration_s: float = 0.0
    passed: bool | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.max_ppl_ratio is not None:
            judged = self.ratio.upper if self.gate_on == "upper" else self.ratio.point
            self.passed = bool(judged <= self.max_ppl_ratio)

    @property
    def windows_used(self) -> int:
        return len(self.pairs)

    @property
    def tokens_saved(self) -> int:
        return (self.windows_planned - self.windows_used) * self.seq_len

    @property
    def baseline_ppl(self) -> float:
        return perplexity([b for b, _ in self.pairs])

    @property
    def edited_ppl(self) -> float:
        return perplexity([e for _, e in self.pairs])

    def gate_failure(self) -> str | None:
        """The decision's reason when the gate fails, naming the gate; else ``None``."""
        if self.passed is not False:
            return None
        judged = self.ratio.upper if self.gate_on == "upper" else self.ratio.point
        what = f"upper {self.ratio.confidence:.0%} bound" if self.gate_on == "upper" else "point"
        return (
            f"evaluation gate (eval.max_ppl_ratio): {self.metric} ratio {what} {judged:.4f} "
            f"> {self.max_ppl_ratio:g}"
        )

    def to_dict(self) -> dict[str, Any]:
        base = [b for b, _ in self.pairs]
        edited = [e for _, e in self.pairs]
        return {
            "metric": self.metric,
            "dataset": self.dataset,
            "windows_planned": self.windows_planned,
            "windows_used": self.windows_used,
            "tokens_evaluated": self.baseline_tokens + self.windows_used * self.seq_len,
            "tokens_saved": self.tokens_saved,
            "baseline": {
                "ppl": self.baseline_ppl,
                "mean_nll": float(np.mean(base)),
                "cached": self.baseline_cached,
            },
            "edited": {"ppl": self.edited_ppl, "mean_nll": float(np.mean(edited))},
            "ratio": {
                "point": self.ratio.point,
                "lower": self.ratio.lower,
                "upper": self.ratio.upper,
                "confidence": self.ratio.confidence,
                "method": BOOTSTRAP_METHOD,
                "seed": self.ratio.seed,
                "resamples": self.ratio.resamples,
            },
            "sequence": None
            if self.sequence is None
            else {
                "lower": _exp(self.sequence[0]),
                "upper": _exp(self.sequence[1]),
                "method": SEQUENCE_METHOD,
            },
            "early_stop": {
                "enabled": self.early_stop,
                "stopped_at": self.stopped_at,
                "reason": self.stop_reason,
            },
            "gate": {
                "max_ppl_ratio": self.max_ppl_ratio,
                "gate_on": self.gate_on,
                "passed": self.passed,
            },
            "pairs": [[b, e] for b, e in self.pairs],
            "duration_s": round(self.duration_s, 6),
        }


def _exp(value: float) -> float:
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf


def load_tokenizer(loaded: Any, options: dict[str, Any]) -> Any:
    """The tokenizer the model's adapter finds next to the weights; a DataError without one."""
    finder = getattr(loaded.adapter, "load_tokenizer", None)
    tokenizer = finder(loaded.model_id, **options) if callable(finder) else None
    if tokenizer is None:
        raise DataError(
            f"model {loaded.model_id!r} comes without a tokenizer (adapter "
            f"{loaded.adapter_name!r}); calibration and evaluation need one: save it next "
            "to the weights, or remove the dataset:/eval: sections"
        )
    return tokenizer


def model_device(model: Any) -> Any:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return "cpu"


class PairedEvaluation:
    """Windows, calibration batches and the paired evaluation of one run."""

    def __init__(
        self,
        dataset: DatasetSection,
        settings: EvalSection,
        evaluator: Evaluator | None,
        windows: WindowSet,
        tokenizer_fp: str,
        source_label: str,
        device: Any,
        progress: Progress | None = None,
        cache: BaselineCache | None = None,
    ) -> None:
        self.dataset, self.settings, self.evaluator = dataset, settings, evaluator
        self.windows, self.tokenizer_fp, self.source_label = windows, tokenizer_fp, source_label
        self.device = device
        self.progress = progress or _no_progress
        self.cache = cache if cache is not None else BaselineCache()
        self.calib = as_batches(windows.calib, settings.batch_size, device) or None
        self.baseline: list[float] | None = None
        self.baseline_cached = False
        self.baseline_seconds = 0.0
        self.cache_warning: str | None = None

    @classmethod
    def prepare(
        cls,
        dataset: DatasetSection,
        settings: EvalSection,
        evaluator: Evaluator | None,
        model: Any,
        tokenizer: Any,
        progress: Progress | None = None,
        cache: BaselineCache | None = None,
    ) -> PairedEvaluation:
        """Read the source, tokenize and cut the windows (see :mod:`invarlock.data.windows`)."""
        texts = read_texts(dataset)
        eval_ids = tokenize(tokenizer, texts.eval_text)
        calib_ids = None if texts.calib_text is None else tokenize(tokenizer, texts.calib_text)
        windows = cut_windows(dataset, eval_ids, calib_ids)
        return cls(
            dataset,
            settings,
            evaluator,
            windows,
            tokenizer_fingerprint(tokenizer),
            texts.label,
            model_device(model),
            progress,
            cache,
        )

    # ------------------------------------------------------------------ scoring

    def _score(
        self, model: Any, rows: Sequence[Sequence[int]], phase: str, total: int
    ) -> Iterator[list[float]]:
        """Yield each batch's losses (a list of floats), reporting progress after each."""
        import torch

        assert self.evaluator is not None, "eval.enabled is false"
        done = 0
        with torch.inference_mode():
            for batch in as_batches(rows, self.settings.batch_size, self.device):
                raw = self.evaluator.window_losses(model, batch)
                losses = [float(v) for v in (raw.tolist() if hasattr(raw, "tolist") else raw)]
                if len(losses) != batch.shape[0]:
                    raise PluginError(
                        f"evaluator {self.evaluator.name!r} returned {len(losses)} losses for a "
                        f"batch of {batch.shape[0]} windows"
                    )
                done += len(losses)
                self.progress(phase, done, total, done * self.windows.seq_len)
                yield losses

    def cache_parts(self, model: Any, weights: Fingerprint | None = None) -> dict[str, str]:
        """What the baseline losses depend on (the cache key's parts); ``{}``, so no caching,
        when some tensor of ``model`` cannot be read. ``weights``: see :meth:`run_baseline`."""
        from invarlock.models.fingerprint import Fingerprint

        assert self.evaluator is not None
        if weights is None:
            weights = Fingerprint.of(model)
        if not weights.readable:
            return {}
        dtype = str(next(iter(model.state_dict().values())).dtype)
        return {
            "weights": weights.digest,
            "tokenizer": self.tokenizer_fp,
            "windows": self.windows.fingerprint,
            "evaluator": f"{self.evaluator.name}/{self.evaluator.version}",
            "dtype": dtype,
            "device": str(self.device),
        }

    def run_baseline(self, model: Any, weights: Fingerprint | None = None) -> None:
        """Baseline losses of every evaluation window, on the unedited ``model``.

        ``weights`` is ``model``'s whole-model fingerprint as it is now, when the caller has
        one (the runner's, taken at load and checked since); it is taken here otherwise."""
        started = time.perf_counter()
        rows = self.windows.eval
        parts = self.cache_parts(model, weights) if self.settings.baseline_cache else {}
        key = baseline_key(**parts) if parts else ""
        cached = self.cache.load(key, len(rows)) if parts else None
        if cached is not None:
            self.baseline, self.baseline_cached = cached, True
        else:
            losses: list[float] = []
            for batch in self._score(model, rows, "baseline", len(rows)):
                losses.extend(batch)
            if not all(math.isfinite(v) for v in losses):
                raise DataError(
                    "the unedited model gives non-finite losses on the evaluation windows; "
                    "nothing to compare the edit against"
                )
            self.baseline = losses
            if parts:
                try:
                    self.cache.store(key, losses, parts)
                except OSError as exc:  # a read-only cache costs time, not correctness
                    self.cache_warning = f"baseline cache not written: {exc}"
        self.baseline_seconds = time.perf_counter() - started

    def run_edited(self, model: Any) -> EvaluationResult:
        """Edited losses window by window, stopping early when the verdict is known."""
        assert self.baseline is not None and self.evaluator is not None, "run_baseline() first"
        started = time.perf_counter()
        settings, planned = self.settings, len(self.windows.eval)
        gate = settings.max_ppl_ratio
        watch = settings.early_stop and gate is not None
        edited: list[float] = []
        bounds: tuple[float, float] | None = None
        stopped_at = reason = None
        for batch in self._score(model, self.windows.eval, "evaluate", planned):
            edited.extend(batch)
            t = len(edited)
            if not watch or t < MIN_WINDOWS:
                continue
            d = np.asarray(edited) - np.asarray(self.baseline[:t])
            if not np.all(np.isfinite(d)):
                bounds, stopped_at, reason = (math.inf, math.inf), t, "non-finite loss"
                break
            bounds = sequence_bounds(d, settings.confidence, planned)
            if t < planned and (reason := self._verdict_known(bounds, t, edited, gate)):
                stopped_at = t
                break
        pairs = list(zip(self.baseline[: len(edited)], edited, strict=True))
        if all(math.isfinite(e) for e in edited):
            ratio = ratio_interval(
                pairs, settings.confidence, self.dataset.seed, settings.bootstrap_resamples
            )
        else:
            inf = math.inf
            ratio = RatioInterval(inf, inf, inf, settings.confidence, self.dataset.seed, 0)
        return EvaluationResult(
            metric=self.evaluator.name,
            dataset=self.dataset_summary(),
            windows_planned=planned,
            pairs=pairs,
            seq_len=self.windows.seq_len,
            baseline_cached=self.baseline_cached,
            baseline_tokens=0 if self.baseline_cached else planned * self.windows.seq_len,
            ratio=ratio,
            sequence=bounds if watch else None,
            early_stop=settings.early_stop,
            stopped_at=stopped_at,
            stop_reason=reason,
            max_ppl_ratio=gate,
            gate_on=settings.gate_on,
            duration_s=self.baseline_seconds + time.perf_counter() - started,
        )

    def _verdict_known(
        self, bounds: tuple[float, float], t: int, edited: list[float], gate: float
    ) -> str | None:
        """Why evaluation can stop after ``t`` windows, or ``None``: the confidence sequence
        is wholly on one side of the gate *and* the gate's own rule on these ``t`` windows
        agrees (so the early verdict is the one the report states)."""
        log_gate = math.log(gate)
        inside, outside = bounds[1] < log_gate, bounds[0] > log_gate
        if not (inside or outside) or self.baseline is None:
            return None
        pairs = list(zip(self.baseline[:t], edited, strict=True))
        settings = self.settings
        ratio = ratio_interval(
            pairs, settings.confidence, self.dataset.seed, settings.bootstrap_resamples
        )
        judged = ratio.upper if settings.gate_on == "upper" else ratio.point
        if inside and judged <= gate:
            return f"ratio inside the gate: sequence upper {math.exp(bounds[1]):.4f} < {gate:g}"
        if outside and judged > gate:
            return f"ratio outside the gate: sequence lower {math.exp(bounds[0]):.4f} > {gate:g}"
        return None

    def dataset_summary(self) -> dict[str, Any]:
        spec = self.dataset
        return {
            "source": spec.source,
            "label": self.source_label,
            "seq_len": spec.seq_len,
            "stride": spec.step,
            "seed": spec.seed,
            "counts": {"eval": len(self.windows.eval), "calib": len(self.windows.calib)},
            "fingerprint": self.windows.fingerprint,
        }
