"""Built-in guards: ``invariants``, ``spectral``, ``rmt`` and ``variance``.

Importing this package never imports torch or transformers (plugin listings import it and
construct each guard from its defaults); the guards import torch inside their methods.
"""

from __future__ import annotations

from invarlock.guards.invariants import InvariantsGuard
from invarlock.guards.rmt import RMTGuard
from invarlock.guards.spectral import SpectralGuard
from invarlock.guards.variance import VarianceGuard

#: The built-in guard classes in their default ``guards.order``.
BUILTIN_GUARDS = (InvariantsGuard, SpectralGuard, RMTGuard, VarianceGuard)

__all__ = ["BUILTIN_GUARDS", "InvariantsGuard", "RMTGuard", "SpectralGuard", "VarianceGuard"]
