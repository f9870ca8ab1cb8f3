"""Time and peak memory of every guard call, added to the guard's entry in report.json.

A hook-style plugin: two ``wrapper=True`` hook implementations around the guard hooks.
A wrapper sees every guard's call (each guard class answers only for its own name, and
the wrapper surrounds them all), so it measures guards from any plugin.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Generator, Mapping
from typing import Any

from invarlock import hookimpl

__version__ = "0.1.0"


def _cuda_device(model: Any) -> Any:
    first = next(model.parameters(), None)
    return first.device if first is not None and first.device.type == "cuda" else None


def _peak_rss_bytes() -> int:
    """The process's peak resident set so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class Meter:
    """Wall-clock time and peak memory from construction to :meth:`stop`."""

    def __init__(self, model: Any) -> None:
        self.device = _cuda_device(model)
        if self.device is not None:
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        self.rss_before = _peak_rss_bytes()
        self.started = time.perf_counter()

    def stop(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.started
        if self.device is not None:
            import torch

            peak, source = torch.cuda.max_memory_allocated(self.device), "cuda_max_allocated"
        else:
            peak, source = _peak_rss_bytes() - self.rss_before, "process_peak_rss_growth"
        return {"wall_s": round(wall, 6), "peak_memory_bytes": int(peak), "memory_source": source}


@hookimpl(wrapper=True)
def invarlock_guard_prepare(model: Any) -> Generator[None, Any, Any]:
    """Add ``timing`` to the prepare result (kept whole in report.json)."""
    meter = Meter(model)
    result = yield
    timing = meter.stop()
    if isinstance(result, Mapping):
        result = {**result, "timing": timing}
    return result


@hookimpl(wrapper=True)
def invarlock_guard_validate(model: Any) -> Generator[None, Any, Any]:
    """Add ``metrics.timing`` to the validate result."""
    meter = Meter(model)
    result = yield
    timing = meter.stop()
    if isinstance(result, Mapping):
        metrics = result.get("metrics")
        metrics = dict(metrics) if isinstance(metrics, Mapping) else {}
        result = {**result, "metrics": {**metrics, "timing": timing}}
    return result
