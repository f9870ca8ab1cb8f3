"""The one JSON-safety function: what every report, event and listing writes goes through it.

Policy (the report schema's, see ``docs/report.md``): the output is strict JSON
(``json.dumps(..., allow_nan=False)`` accepts it).

- ``None``, ``bool``, ``int`` and ``str`` pass unchanged;
- a finite ``float`` passes unchanged; a **non-finite** one (NaN, +Inf, -Inf) becomes ``None``
  (JSON ``null``), which the schema's ``["number", "null"]`` fields accept;
- mappings become dicts with ``str`` keys; lists, tuples and sets become lists;
- tensors, numpy arrays and numpy scalars become numbers or lists (through ``tolist()``),
  then the same rules apply;
- anything else becomes its ``repr``.

Torch- and numpy-free: it only duck-types ``tolist``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["json_safe"]


def json_safe(value: Any) -> Any:
    """A strict-JSON copy of ``value``; non-finite floats become ``None`` (see the module)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(item) for item in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        try:
            return json_safe(tolist())
        except Exception:
            pass
    return repr(value)
