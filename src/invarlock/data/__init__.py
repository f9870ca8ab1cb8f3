"""Text for calibration and evaluation: sources, the ``dataset:`` settings and windows.

* :mod:`invarlock.data.settings` — the validated ``dataset:`` config section;
* :mod:`invarlock.data.sources` — bundled corpus, text file, JSONL file, HF datasets;
* :mod:`invarlock.data.windows` — deterministic, disjoint, deduplicated token windows;
* :mod:`invarlock.data.corpus` — the bundled public-domain corpus.

Importing this package is cheap: nothing here imports torch at module level.
"""
