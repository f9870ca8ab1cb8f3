"""Built-in plugin: registers the ``hf_causal`` and ``auto`` adapters (torch-free import)."""

from __future__ import annotations

from collections.abc import Callable

from invarlock._markers import hookimpl


@hookimpl
def invarlock_register_adapters(register: Callable[..., None]) -> None:
    from invarlock.adapters.auto import AutoAdapter
    from invarlock.adapters.hf_causal import HF_Causal_Adapter

    register(HF_Causal_Adapter)
    register(AutoAdapter)
