"""invarlock: quantize a language model with RTN, prove with guards that it did no harm,
or roll it back.

Importing this package is cheap: it never imports torch or transformers.
"""

from __future__ import annotations

from invarlock._markers import PROJECT_NAME, hookimpl, hookspec

__version__ = "0.1.0"

__all__ = ["PROJECT_NAME", "__version__", "hookimpl", "hookspec"]
