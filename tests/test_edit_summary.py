"""What guards receive as ``context["edit"]``: a read-only summary of the edit's result."""

from __future__ import annotations

import dataclasses

import pytest

from invarlock.core.edit import EditSummary, export_form
from invarlock.edits import get_edit
from invarlock.edits.rtn import RTNCodes


def test_the_summary_names_what_the_edit_wrote(gpt2) -> None:
    edit = get_edit("quant_rtn")
    result = edit.apply(gpt2, edit.parse({"bits": 4, "include": ["*"]}))
    summary = result.summary()
    assert isinstance(summary, EditSummary) and summary.name == "quant_rtn"
    assert summary.params["bits"] == 4 and summary.numel == result.numel
    assert summary.modules == {layer.name for layer in result.layers}
    assert "transformer.h.0.attn.c_attn" in summary.modules
    assert {"lm_head.weight", "transformer.wte.weight"} <= summary.parameters  # tied: both names
    assert summary.to_dict() == result.to_dict()
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        summary.params["bits"] = 8  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.layers[0].bits = 8  # type: ignore[misc]


def test_noop_summarises_to_nothing_and_has_no_export(gpt2) -> None:
    edit = get_edit("noop")
    result = edit.apply(gpt2, edit.parse({}))
    assert result.summary().modules == frozenset() and result.summary().parameters == frozenset()
    assert export_form(edit, edit.parse({}), result) is None


def test_quant_rtn_exports_its_result_codes(gpt2) -> None:
    edit = get_edit("quant_rtn")
    config = edit.parse({})
    result = edit.apply(gpt2, config)
    codes = export_form(edit, config, result)
    assert isinstance(codes, RTNCodes) and codes.config is config
    assert codes.records == result.codes and codes.records is not result.codes
    target = codes.targets(gpt2)[0]
    before = target.weight.detach().clone()
    coded = codes.codes(target)  # rebuilt from the recorded scales: the weight is untouched
    assert coded.codes.shape == target.weight.shape
    assert target.weight.detach().equal(before)
