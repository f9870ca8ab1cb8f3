"""The paired evaluation: baseline vs edited model on the same windows, and its verdict.

* :mod:`~invarlock.core.evaluator` — the :class:`Evaluator` plugin API (torch-free);
* :mod:`~invarlock.evaluation.perplexity` — the built-in ``perplexity`` evaluator;
* :mod:`~invarlock.evaluation.stats` — perplexities, ratio, bootstrap interval;
* :mod:`~invarlock.evaluation.sequence` — the confidence sequence behind early stopping;
* :mod:`~invarlock.evaluation.cache` — the baseline cache and its fingerprints;
* :mod:`~invarlock.evaluation.settings` — the validated ``eval:`` config section;
* :mod:`~invarlock.evaluation.paired` — one run's evaluation, called by the runner.

Method, seeds and assumptions: docs/evaluation.md.
"""

from invarlock.core.evaluator import Evaluator

__all__ = ["Evaluator"]
