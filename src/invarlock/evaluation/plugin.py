"""Built-in plugin: registers the ``perplexity`` evaluator (``eval.metric: perplexity``)."""

from __future__ import annotations

from collections.abc import Callable

from invarlock._markers import hookimpl


@hookimpl
def invarlock_register_evaluators(register: Callable[..., None]) -> None:
    from invarlock.evaluation.perplexity import PerplexityEvaluator

    register(PerplexityEvaluator)
