"""Keep transformers' own progress bars and log warnings out of invarlock's output."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_transformers(keep_warnings: bool = False) -> Iterator[None]:
    """Inside the block transformers draws no progress bars and, unless ``keep_warnings``,
    logs errors only (for loads of invarlock's own cache, whose warnings are noise)."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    if not keep_warnings:
        hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            if not keep_warnings:
                warnings.filterwarnings("ignore", module=r"transformers(\.|$)")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
