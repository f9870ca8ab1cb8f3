"""``noop``: an edit that changes nothing, for dry runs and for testing the guards."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from invarlock.core.edit import EditResult
from invarlock.edits.config import parse_noop

__all__ = ["Noop"]


class Noop:
    """The edit that writes no tensor: guards compare the model with itself."""

    name = "noop"

    def parse(self, params: Mapping[str, Any] | None) -> Mapping[str, Any]:
        """Accept no parameters (``plan: {}`` is fine); anything else is an error."""
        return parse_noop(params)

    def targets(self, model: Any, config: Mapping[str, Any]) -> list[str]:
        """Nothing is written, so nothing needs a snapshot."""
        return []

    def apply(self, model: Any, config: Mapping[str, Any]) -> EditResult:
        """Leave ``model`` untouched."""
        start = time.perf_counter()
        return EditResult(name=self.name, params={}, duration_s=time.perf_counter() - start)
