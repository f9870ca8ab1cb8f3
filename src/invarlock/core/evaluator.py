"""The evaluator plugin API: subclass :class:`Evaluator` and register it.

An evaluator turns a batch of token windows into one loss per window, on a log scale
(lower is better; ``exp(mean loss)`` is the reported value, e.g. perplexity). The host
pairs the baseline's and the edited model's losses window by window and does the
statistics, the gate and early stopping; the evaluator only scores.

Register a class with the ``invarlock_register_evaluators(register)`` hook or the
``invarlock.evaluators`` entry-point group (the built-in ``perplexity`` uses the latter,
like the built-in guards). This module never imports torch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar


class Evaluator(ABC):
    """Scores windows; ``eval.metric`` names the one a run uses.

    Subclasses set ``name`` (and optionally ``version``, which is part of the baseline
    cache key: bump it when scores change) and implement :meth:`window_losses`. The class
    must be constructible without arguments.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str | None] = None
    #: Import names of packages this evaluator needs; missing ones are listed as ``⛔ needs``.
    requires: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def window_losses(self, model: Any, input_ids: Any) -> Sequence[float] | Any:
        """One log-scale loss per row of ``input_ids`` (a ``[batch, seq_len]`` LongTensor on
        the model's device). Called under ``torch.inference_mode()``; return a sequence of
        floats or a 1-D tensor."""
