"""Every export format written, loaded back through its consumer's own loader, and compared
with the guarded model bit for bit; the formats refuse what they cannot hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("compressed_tensors")
pytest.importorskip("gguf")
from safetensors import safe_open
from transformers import AutoModelForCausalLM, CompressedTensorsConfig

from invarlock.core.edit import export_form
from invarlock.edits import get_edit
from invarlock.exporters import ExportError, Source, refusals
from invarlock.exporters.run import export_all
from invarlock.testing.models import build_tiny_model, export_gguf


def edited(model_dir: Path, params: dict, **load):
    """A model edited with quant_rtn, and the edit's integer form (what the runner exports)."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, **load).eval()
    edit = get_edit("quant_rtn")
    config = edit.parse(params)
    return model, export_form(edit, config, edit.apply(model, config))


def assert_bit_equal(loaded, guarded) -> None:
    reference = guarded.state_dict()
    state = loaded.state_dict()
    assert state.keys() == reference.keys()
    for name, tensor in reference.items():
        assert state[name].dtype == tensor.dtype, name
        assert torch.equal(state[name], tensor), name
    ids = torch.tensor([[1, 5, 9, 42, 7]])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, guarded(ids).logits)


CT_CASES = [
    ({"bits": 8}, "pack-quantized"),
    ({"bits": 4, "group_size": 16}, "pack-quantized"),
    ({"bits": 8, "symmetric": False}, "naive-quantized"),
    ({"bits": 4, "symmetric": False, "group_size": 16}, "naive-quantized"),
]


@pytest.mark.parametrize(("params", "fmt"), CT_CASES)
def test_compressed_tensors_round_trip(tiny_llama_dir, tmp_path, params, fmt) -> None:
    model, codes = edited(tiny_llama_dir, params)
    [entry] = export_all(
        ["compressed-tensors"], model, codes, tmp_path, Source.of(str(tiny_llama_dir))
    )
    out = Path(entry["path"])
    assert entry["proof"]["bit_equal"] and entry["proof"]["max_abs_weight_diff"] == 0.0

    quantization = json.loads((out / "config.json").read_text())["quantization_config"]
    assert quantization["quant_method"] == "compressed-tensors"
    assert quantization["format"] == fmt
    assert quantization["ignore"] == ["lm_head"]
    weights = quantization["config_groups"]["group_0"]["weights"]
    assert weights["num_bits"] == params["bits"]
    assert weights["symmetric"] == params.get("symmetric", True)
    assert weights["strategy"] == ("group" if "group_size" in params else "channel")
    with safe_open(out / "model.safetensors", "pt") as handle:
        scale = handle.get_tensor("model.layers.0.mlp.up_proj.weight_scale")
        assert scale.dtype == torch.float32  # fp16/bf16 scales would not load exactly
        stored = "weight_packed" if fmt == "pack-quantized" else "weight"
        codes = handle.get_tensor(f"model.layers.0.mlp.up_proj.{stored}")
        assert codes.dtype == (torch.int32 if fmt == "pack-quantized" else torch.int8)

    loaded = AutoModelForCausalLM.from_pretrained(
        out, quantization_config=CompressedTensorsConfig(dequantize=True)
    ).eval()
    assert_bit_equal(loaded, model)
    assert {f["name"] for f in entry["files"]} >= {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    }
    for item in entry["files"]:
        assert item["bytes"] == (out / item["name"]).stat().st_size and len(item["sha256"]) == 64


def test_compressed_tensors_in_bfloat16(tmp_path) -> None:
    model_dir = build_tiny_model("llama", tmp_path / "bf16", dtype="bfloat16", seed=3)
    model, codes = edited(model_dir, {"bits": 4, "group_size": 16}, dtype=torch.bfloat16)
    [entry] = export_all(
        ["compressed-tensors", "hf"][:1], model, codes, tmp_path, Source.of(str(model_dir))
    )
    assert entry["proof"]["bit_equal"]


@pytest.mark.parametrize("grid", ["gguf_q8_0", "gguf_q4_0"])
@pytest.mark.parametrize("from_gguf", [False, True], ids=["from-hf", "from-gguf"])
def test_gguf_round_trip(tiny_llama_dir, tmp_path, grid, from_gguf) -> None:
    import gguf

    params = {"grid": grid, "exclude": ["*down_proj"]}  # 176 columns: no blocks of 32
    if from_gguf:
        source_file = export_gguf(tiny_llama_dir, tmp_path / "src" / "tiny.gguf")
        model = AutoModelForCausalLM.from_pretrained(
            source_file.parent, gguf_file=source_file.name
        ).eval()
        edit = get_edit("quant_rtn")
        config = edit.parse(params)
        codes = export_form(edit, config, edit.apply(model, config))
        source = Source.of(str(source_file))
    else:
        model, codes = edited(tiny_llama_dir, params)
        source = Source.of(str(tiny_llama_dir))
    [entry] = export_all(["gguf"], model, codes, tmp_path, source)
    assert entry["proof"]["bit_equal"] and entry["proof"]["max_abs_logit_diff"] == 0.0
    [file] = Path(entry["path"]).glob("*.gguf")

    reader = gguf.GGUFReader(file)
    qtype = (
        gguf.GGMLQuantizationType.Q8_0 if grid == "gguf_q8_0" else gguf.GGMLQuantizationType.Q4_0
    )
    types = {tensor.name: tensor.tensor_type for tensor in reader.tensors}
    assert types["blk.0.attn_q.weight"] == qtype and types["blk.2.ffn_up.weight"] == qtype
    assert types["blk.0.ffn_down.weight"] == gguf.GGMLQuantizationType.F32  # kept its type
    assert types["token_embd.weight"] == gguf.GGMLQuantizationType.F32
    file_type = int(reader.fields["general.file_type"].contents())
    wanted = (
        gguf.LlamaFileType.MOSTLY_Q8_0 if grid == "gguf_q8_0" else gguf.LlamaFileType.MOSTLY_Q4_0
    )
    assert file_type == int(wanted)
    assert len(reader.fields["tokenizer.ggml.tokens"].contents()) == model.config.vocab_size

    loaded = AutoModelForCausalLM.from_pretrained(file.parent, gguf_file=file.name).eval()
    assert_bit_equal(loaded, model)  # q/k rows were permuted for llama.cpp and back


def test_hf_keeps_the_dtype_and_loads_anywhere(tmp_path) -> None:
    model_dir = build_tiny_model("llama", tmp_path / "fp16", dtype="float16", seed=1)
    model, codes = edited(
        model_dir, {"bits": 4, "symmetric": False, "group_size": 16}, dtype=torch.float16
    )
    [entry] = export_all(["hf"], model, codes, tmp_path, Source.of(str(model_dir)))
    loaded = AutoModelForCausalLM.from_pretrained(entry["path"]).eval()
    assert loaded.dtype == torch.float16
    assert_bit_equal(loaded, model)


def test_native_through_the_registry(tiny_llama_dir, tmp_path) -> None:
    from invarlock.edits.export import load_quantized

    model, codes = edited(tiny_llama_dir, {"bits": 4, "group_size": 16})
    [entry] = export_all(["native"], model, codes, tmp_path, Source.of(str(tiny_llama_dir)))
    assert entry["path"] == str(tmp_path / "model")
    assert_bit_equal(load_quantized(entry["path"]), model)


# --------------------------------------------------------------------------- refusals


def test_conv1d_is_refused_for_compressed_tensors(tiny_gpt2_dir, tmp_path) -> None:
    model, codes = edited(tiny_gpt2_dir, {"bits": 8})
    with pytest.raises(ExportError, match="Conv1D; compressed-tensors quantizes only torch Linear"):
        export_all(
            ["native", "compressed-tensors"], model, codes, tmp_path, Source.of(str(tiny_gpt2_dir))
        )
    assert list(tmp_path.iterdir()) == []  # refused before the first format was written


def test_partial_groups_are_refused_for_compressed_tensors(tiny_llama_dir, tmp_path) -> None:
    model, codes = edited(tiny_llama_dir, {"bits": 4, "group_size": 32})
    with pytest.raises(
        ExportError, match=r"176 input columns, not a multiple of group_size 32.*group_size 16 fits"
    ):
        export_all(["compressed-tensors"], model, codes, tmp_path, Source.of(str(tiny_llama_dir)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("params", "nearest"),
    [({"bits": 8}, "gguf_q8_0"), ({"bits": 4, "group_size": 32}, "gguf_q4_0")],
)
def test_gguf_refuses_other_grids_naming_the_nearest(params, nearest) -> None:
    edit = get_edit("quant_rtn")
    codes = export_form(edit, edit.parse(params))  # before the edit ran: what --dry-run checks
    reason = refusals(["native", "gguf", "compressed-tensors"], codes)
    assert list(reason) == ["gguf"]
    assert reason["gguf"].endswith(f"the nearest edit that fits is edit.grid: {nearest}")


def test_formats_needing_codes_refuse_the_noop_edit() -> None:
    edit = get_edit("noop")
    codes = export_form(edit, edit.parse({}), edit.apply(None, edit.parse({})))
    assert codes is None  # noop has no export
    reasons = refusals(["native", "hf", "compressed-tensors", "gguf"], codes)
    assert sorted(reasons) == ["compressed-tensors", "gguf", "native"]
    assert set(reasons.values()) == {
        "it stores quant_rtn integer codes and this edit has none; use the hf format"
    }


def test_gguf_refuses_non_llama_models(tiny_gpt2_dir, tmp_path) -> None:
    model, codes = edited(tiny_gpt2_dir, {"grid": "gguf_q8_0"})
    with pytest.raises(ExportError, match=r"Llama-family models .* not 'gpt2'"):
        export_all(["gguf"], model, codes, tmp_path, Source.of(str(tiny_gpt2_dir)))
    assert list(tmp_path.iterdir()) == []


def test_compressed_tensors_in_shards(tiny_llama_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("invarlock.exporters.shards.SHARD_BYTES", 64 * 1024)
    model, codes = edited(tiny_llama_dir, {"bits": 8, "symmetric": False})
    [entry] = export_all(
        ["compressed-tensors"], model, codes, tmp_path, Source.of(str(tiny_llama_dir))
    )
    names = [item["name"] for item in entry["files"]]
    assert "model.safetensors.index.json" in names
    assert sum(name.startswith("model-0") for name in names) > 3
    assert entry["proof"]["bit_equal"]  # transformers read every shard through the index


def test_gguf_without_a_tokenizer_is_refused_before_writing(tiny_llama_dir, tmp_path) -> None:
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(tiny_llama_dir, bare)
    (bare / "tokenizer.json").unlink()
    model, codes = edited(bare, {"grid": "gguf_q8_0", "exclude": ["*down_proj"]})
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ExportError, match="no tokenizer to embed"):
        export_all(["native", "gguf"], model, codes, out, Source.of(str(bare)))
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_gguf_from_a_half_precision_model(tmp_path, dtype) -> None:
    """The file holds the edit's codes; loaded in the model's dtype it is the guarded model."""
    model_dir = build_tiny_model("llama", tmp_path / dtype, dtype=dtype, seed=2)
    params = {"grid": "gguf_q4_0", "exclude": ["*down_proj"]}
    model, codes = edited(model_dir, params, dtype=getattr(torch, dtype))
    [entry] = export_all(["gguf"], model, codes, tmp_path, Source.of(str(model_dir)))
    assert entry["proof"]["bit_equal"]
    [file] = Path(entry["path"]).glob("*.gguf")
    loaded = AutoModelForCausalLM.from_pretrained(
        file.parent, gguf_file=file.name, dtype=getattr(torch, dtype)
    ).eval()
    assert_bit_equal(loaded, model)
