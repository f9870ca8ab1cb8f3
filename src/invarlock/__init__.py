"""invarlock: quantize a language model with RTN, prove with guards that it did no harm,
or roll it back.

The plugin API is importable from here (``from invarlock import Guard, hookimpl``). Each
name is imported on first use, so ``import invarlock`` stays cheap: it never imports torch,
transformers or pluggy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from invarlock.core.lazy import lazy_exports

__version__ = "0.1.0"
PROJECT_NAME = "invarlock"

#: Public name -> the module defining it.
_EXPORTS: dict[str, str] = {
    "hookimpl": "invarlock._markers",
    "hookspec": "invarlock._markers",
    "Guard": "invarlock.core.api",
    "GuardResult": "invarlock.core.api",
    "LoadedModel": "invarlock.core.api",
    "ModelAdapter": "invarlock.core.api",
    "ModelDescription": "invarlock.core.api",
    "Register": "invarlock.core.api",
    "RunContext": "invarlock.core.context",
    "Edit": "invarlock.core.edit",
    "EditResult": "invarlock.core.edit",
    "EditSummary": "invarlock.core.edit",
    "LayerStats": "invarlock.core.edit",
    "RunReport": "invarlock.core.report",
    "GuardOutcome": "invarlock.core.results",
}

__all__ = ["PROJECT_NAME", "__version__", *_EXPORTS]

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ imports on first use
    from invarlock._markers import hookimpl as hookimpl
    from invarlock._markers import hookspec as hookspec
    from invarlock.core.api import Guard as Guard
    from invarlock.core.api import GuardResult as GuardResult
    from invarlock.core.api import LoadedModel as LoadedModel
    from invarlock.core.api import ModelAdapter as ModelAdapter
    from invarlock.core.api import ModelDescription as ModelDescription
    from invarlock.core.api import Register as Register
    from invarlock.core.context import RunContext as RunContext
    from invarlock.core.edit import Edit as Edit
    from invarlock.core.edit import EditResult as EditResult
    from invarlock.core.edit import EditSummary as EditSummary
    from invarlock.core.edit import LayerStats as LayerStats
    from invarlock.core.report import RunReport as RunReport
    from invarlock.core.results import GuardOutcome as GuardOutcome


__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
