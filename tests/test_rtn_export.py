"""Exporting a quant_rtn model as integer codes, and loading it back bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from invarlock.core.errors import ModelLoadError
from invarlock.edits import get_edit
from invarlock.edits.export import export_quantized, load_quantized


def load(model_dir: Path, dtype: torch.dtype | None = None):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()


def bits(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes, with -0.0 folded into +0.0 (a code carries no sign of zero)."""
    return (tensor.detach() + 0).contiguous().view(torch.uint8)


def edit_and_export(model_dir: Path, out: Path, params: dict, dtype=None, source_dir=None):
    """``(edited in place, exported, loaded back)`` from two fresh copies of ``model_dir``."""
    edit = get_edit("quant_rtn")
    config = edit.parse(params)
    edited, exported = load(model_dir, dtype), load(model_dir, dtype)
    edit.apply(edited, config)
    assert export_quantized(exported, config, out, source_dir=source_dir) == out
    return edited, exported, load_quantized(out)


def assert_same_model(edited, exported, loaded) -> None:
    reference = edited.state_dict()
    for name, tensor in exported.state_dict().items():  # export edits exactly as apply does
        assert torch.equal(tensor.view(torch.uint8), reference[name].view(torch.uint8)), name
    loaded_state = loaded.state_dict()
    assert loaded_state.keys() == reference.keys()
    for name, tensor in loaded_state.items():
        assert tensor.dtype == reference[name].dtype, name
        assert torch.equal(bits(tensor), bits(reference[name])), name


def test_gpt2_round_trip_with_tokenizer(tiny_gpt2_dir, tmp_path):
    from transformers import AutoTokenizer

    out = tmp_path / "gpt2-int8"
    edited, exported, loaded = edit_and_export(tiny_gpt2_dir, out, {}, source_dir=tiny_gpt2_dir)
    assert_same_model(edited, exported, loaded)
    assert loaded.lm_head.weight is loaded.transformer.wte.weight  # the tie survives

    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = tokenizer("The quick brown fox jumps over the lazy dog.", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, edited(ids).logits)

    stored = load_file(str(out / "model.safetensors"))
    codes = stored["transformer.h.0.attn.c_attn.weight.codes"]
    assert codes.dtype == torch.int8 and codes.shape == (64, 192)  # Conv1D layout (in, out)
    assert stored["transformer.h.0.attn.c_attn.weight.scale"].shape == (192, 1)
    assert "transformer.h.0.attn.c_attn.weight" not in stored
    assert "transformer.wte.weight" in stored and "lm_head.weight" not in stored
    manifest = json.loads((out / "quantization.json").read_text())
    assert manifest["format"] == "invarlock-rtn" and manifest["version"] == 1
    assert manifest["aliases"] == {"lm_head.weight": "transformer.wte.weight"}
    entry = manifest["tensors"]["transformer.h.0.attn.c_attn.weight"]
    assert entry == {
        "module": "transformer.h.0.attn.c_attn",
        "module_type": "Conv1D",
        "shape": [64, 192],
        "out_axis": 1,
        "dtype": "float32",
        "aliases": [],
    }
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()


def test_llama_grouped_asymmetric_round_trip(tiny_llama_dir, tmp_path):
    out = tmp_path / "llama-int4"
    params = {"bits": 4, "symmetric": False, "group_size": 48}
    edited, exported, loaded = edit_and_export(tiny_llama_dir, out, params)
    assert_same_model(edited, exported, loaded)
    ids = torch.arange(3, 40)[None]
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, edited(ids).logits)

    stored = load_file(str(out / "model.safetensors"))
    name = "model.layers.0.mlp.down_proj.weight"  # (64, 176): 3 full groups of 48 and one of 32
    assert stored[f"{name}.codes"].dtype == torch.uint8
    assert stored[f"{name}.codes"].shape == (64, 176)
    assert stored[f"{name}.scale"].shape == (64, 4)
    assert stored[f"{name}.zero_point"].shape == (64, 4)
    assert int(stored[f"{name}.codes"].max()) <= 15


def test_quantized_tied_weight_is_stored_once(tiny_gpt2_dir, tmp_path):
    out = tmp_path / "gpt2-head"
    params = {"include": ["lm_head"], "bits": 6}
    edited, exported, loaded = edit_and_export(tiny_gpt2_dir, out, params)
    assert_same_model(edited, exported, loaded)
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    manifest = json.loads((out / "quantization.json").read_text())
    assert list(manifest["tensors"]) == ["transformer.wte.weight"]
    assert manifest["tensors"]["transformer.wte.weight"]["aliases"] == ["lm_head.weight"]
    stored = load_file(str(out / "model.safetensors"))
    assert "transformer.wte.weight" not in stored and "lm_head.weight" not in stored


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize(
    "params",
    [{"bits": 8, "symmetric": False, "group_size": 48}, {"bits": 8, "clamp_percentile": 99.0}],
)
def test_exporting_the_edited_model_writes_it_as_is(dtype, params, tiny_llama_dir, tmp_path):
    """The runner's flow: apply, let the guards judge, then export the same model object."""
    edit = get_edit("quant_rtn")
    config = edit.parse(params)
    model = load(tiny_llama_dir, dtype)
    with torch.no_grad():  # one-sided weights: asymmetric codes spread over 0..255, more than
        model.model.layers[0].mlp.up_proj.weight.uniform_(0.0, 0.05)  # bf16 tells apart
    result = edit.apply(model, config)
    edited = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    export_quantized(model, config, tmp_path / "out", result=result)
    for name, tensor in model.state_dict().items():  # export did not touch the edited model
        assert torch.equal(tensor.view(torch.uint8), edited[name].view(torch.uint8)), name
    loaded = load_quantized(tmp_path / "out")
    assert loaded.model.layers[0].mlp.up_proj.weight.dtype == dtype
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(bits(tensor), bits(edited[name])), name


def test_bfloat16_codes_are_recovered_exactly():
    """bfloat16 keeps 8 significant bits, so asymmetric 8-bit codes above 128 share stored
    values: ``round(w' / scale)`` may land on a neighbouring code, at a tie even one outside
    0..255. Recovery must still give codes that decode to the stored weight."""
    from invarlock.edits.codes import codes_of_edited, decode, quantize_recorded_
    from invarlock.edits.config import QuantSpec

    generator = torch.Generator().manual_seed(0)
    param = torch.nn.Parameter(torch.randn(1024, 1024, generator=generator).to(torch.bfloat16))
    spec = QuantSpec(bits=8, symmetric=False, group_size=16)
    _, record = quantize_recorded_(param, 0, spec)
    codes = codes_of_edited(param, record)
    assert torch.equal(decode(codes, 0, spec, torch.bfloat16), param.detach())
    scale = codes.scale.repeat_interleave(16, dim=1)
    zero = codes.zero_point.float().repeat_interleave(16, dim=1)
    naive = torch.round(param.detach().float() / scale) + zero
    assert (naive > 255).any()  # the case this test is about does occur in this weight


def test_scale_records_travel_in_the_result_and_hold_no_weight(tiny_gpt2_dir):
    import gc

    model = load(tiny_gpt2_dir)
    edit = get_edit("quant_rtn")
    config = edit.parse({})
    result = edit.apply(model, config)
    assert sorted(result.codes) == sorted(layer.param for layer in result.layers)
    assert "codes" not in result.to_dict()
    name = result.layers[0].param
    record, weight = result.codes[name], model.get_parameter(name)
    assert record.holds(weight, result.layers[0].out_axis, config.spec)
    del model, weight
    gc.collect()
    assert record.weight() is None  # the result does not keep the model alive


def test_a_weight_changed_after_the_edit_is_quantized_again(tiny_gpt2_dir, tmp_path):
    edit = get_edit("quant_rtn")
    config = edit.parse({"bits": 4, "group_size": 48})
    pristine, model = load(tiny_gpt2_dir), load(tiny_gpt2_dir)
    result = edit.apply(model, config)
    edited = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    with torch.no_grad():  # a snapshot restore: the weights are the originals again
        for name, param in model.named_parameters():
            param.copy_(pristine.get_parameter(name))
    export_quantized(model, config, tmp_path / "out", result=result)
    loaded = load_quantized(tmp_path / "out")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor.view(torch.uint8), edited[name].view(torch.uint8)), name
        assert torch.equal(bits(loaded.state_dict()[name]), bits(tensor)), name


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_round_trip(dtype, tiny_llama_dir, tmp_path):
    params = {"bits": 8, "symmetric": False, "group_size": 48, "clamp_max_ratio": 0.9}
    edited, exported, loaded = edit_and_export(tiny_llama_dir, tmp_path / "half", params, dtype)
    assert loaded.model.layers[0].mlp.up_proj.weight.dtype == dtype
    assert_same_model(edited, exported, loaded)


def test_load_errors_name_the_file(tiny_gpt2_dir, tmp_path):
    with pytest.raises(ModelLoadError, match=r"quantization.json: missing"):
        load_quantized(tmp_path / "nowhere")

    out = tmp_path / "export"
    export_quantized(load(tiny_gpt2_dir), {"bits": 4}, out)
    manifest_path = out / "quantization.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(ModelLoadError, match=r"quantization.json: version 99 is not supported"):
        load_quantized(out)

    manifest_path.write_text(json.dumps(manifest))
    weights_path = out / "model.safetensors"
    stored = load_file(str(weights_path))
    del stored["transformer.h.1.mlp.c_fc.weight.scale"]
    save_file(stored, str(weights_path))
    with pytest.raises(
        ModelLoadError, match=r"model.safetensors: quantized tensor 'transformer.h.1.mlp.c_fc"
    ):
        load_quantized(out)


def test_export_rejects_what_it_cannot_ship(tiny_gpt2_dir, tmp_path):
    plain = torch.nn.Sequential(torch.nn.Linear(4, 4))
    with pytest.raises(TypeError, match=r"Sequential has no transformers config"):
        export_quantized(plain, {}, tmp_path / "plain")
    with pytest.raises(FileNotFoundError, match=r"source_dir .*missing is not a directory"):
        export_quantized(load(tiny_gpt2_dir), {}, tmp_path / "x", source_dir=tmp_path / "missing")


def test_large_exports_are_written_and_read_in_shards(tiny_llama_dir, tmp_path):
    out = tmp_path / "sharded"
    edit = get_edit("quant_rtn")
    config = edit.parse({"bits": 4, "symmetric": False, "group_size": 16})
    edited, exported = load(tiny_llama_dir), load(tiny_llama_dir)
    edit.apply(edited, config)
    export_quantized(exported, config, out, max_shard_bytes=64 * 1024)
    shards = sorted(p.name for p in out.glob("model-*.safetensors"))
    assert len(shards) > 3 and not (out / "model.safetensors").exists()
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == shards
    assert_same_model(edited, exported, load_quantized(out))

    (out / shards[1]).unlink()
    with pytest.raises(ModelLoadError, match=r"not a complete invarlock RTN export"):
        load_quantized(out)
