"""Where invarlock keeps what it can rebuild: ``$INVARLOCK_CACHE_DIR``, else ``~/.cache/invarlock``.

Everything under it is safe to delete; it is recreated on demand.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the cache directory.
CACHE_ENV = "INVARLOCK_CACHE_DIR"


def cache_root() -> Path:
    """The cache directory (not created here)."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    return Path(os.path.expanduser(configured or "~/.cache/invarlock"))
