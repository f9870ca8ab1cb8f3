"""The one-of-each helpers in core: tied-weight identity, dtype names, lazy exports."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from invarlock.core.lazy import lazy_exports
from invarlock.core.structure import dtype_name, storage_key, tied_groups


def test_storage_key_is_equal_exactly_for_views_of_the_same_memory() -> None:
    base = torch.zeros(4, 6)
    assert storage_key(base) == storage_key(base.detach())
    assert storage_key(base) == storage_key(base.view(4, 6))
    assert storage_key(base) != storage_key(base.t())  # same memory, another layout
    assert storage_key(base) != storage_key(base[1:])  # another offset
    assert storage_key(base) != storage_key(base.clone())


def test_state_dict_tensors_of_tied_parameters_share_a_key(gpt2) -> None:
    state = gpt2.state_dict()
    assert storage_key(state["lm_head.weight"]) == storage_key(state["transformer.wte.weight"])
    assert tied_groups(gpt2) == [["transformer.wte.weight", "lm_head.weight"]]


@pytest.mark.parametrize(
    ("dtype", "name"),
    [
        (torch.float32, "float32"),
        (torch.bfloat16, "bfloat16"),
        (torch.float8_e4m3fn, "float8_e4m3fn"),
    ],
)
def test_dtype_name(dtype: torch.dtype, name: str) -> None:
    assert dtype_name(dtype) == name


def test_lazy_exports_import_on_first_use_only() -> None:
    code = (
        "import sys\n"
        "from invarlock.core.lazy import lazy_exports\n"
        "get = lazy_exports('pkg', {'Fraction': 'fractions'})\n"
        "assert 'fractions' not in sys.modules\n"
        "assert get('Fraction').__name__ == 'Fraction'\n"
        "assert 'fractions' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lazy_exports_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'nope'"):
        lazy_exports("pkg", {})("nope")
