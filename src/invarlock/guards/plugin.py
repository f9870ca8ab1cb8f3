"""Built-in plugin: registers the ``invariants``, ``spectral``, ``rmt`` and ``variance`` guards."""

from __future__ import annotations

from collections.abc import Callable

from invarlock._markers import hookimpl


@hookimpl
def invarlock_register_guards(register: Callable[..., None]) -> None:
    from invarlock.guards.invariants import InvariantsGuard
    from invarlock.guards.rmt import RMTGuard
    from invarlock.guards.spectral import SpectralGuard
    from invarlock.guards.variance import VarianceGuard

    for guard in (InvariantsGuard, SpectralGuard, RMTGuard, VarianceGuard):
        register(guard)
