"""The pluggy markers of the ``invarlock`` project (re-exported by :mod:`invarlock`)."""

from __future__ import annotations

import pluggy

from invarlock import PROJECT_NAME

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
