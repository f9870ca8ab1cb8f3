"""The tiny-model builder: determinism, realistic structure, a real tokenizer, GGUF export, CLI."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

from invarlock.adapters import HF_Causal_Adapter
from invarlock.testing import build_tiny_model, corpus_text, export_gguf
from invarlock.testing.models import LLAMA_INTERMEDIATE_SIZE, VOCAB_SIZE, main


def _file_hashes(directory: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
    }


def test_same_seed_gives_identical_bytes(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_model("gpt2", tmp_path / "again")
    assert _file_hashes(again) == _file_hashes(tiny_gpt2_dir)
    assert "model.safetensors" in _file_hashes(again)


def test_other_seed_changes_weights_not_tokenizer(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    other = _file_hashes(build_tiny_model("gpt2", tmp_path / "seed1", seed=1))
    base = _file_hashes(tiny_gpt2_dir)
    assert other["model.safetensors"] != base["model.safetensors"]
    assert other["tokenizer.json"] == base["tokenizer.json"]


def test_gpt2_structure(tiny_gpt2_dir: Path) -> None:
    from transformers.pytorch_utils import Conv1D

    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2_dir)
    assert isinstance(model.transformer.h[0].attn.c_attn, Conv1D)
    assert isinstance(model.transformer.h[0].mlp.c_fc, Conv1D)
    assert model.config.vocab_size == len(tokenizer) == VOCAB_SIZE
    assert model.lm_head.weight is model.transformer.wte.weight


def test_llama_structure(tiny_llama_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    config = model.config
    layer = model.model.layers[0]
    assert config.num_key_value_heads < config.num_attention_heads  # grouped-query attention
    assert layer.self_attn.k_proj.out_features == config.num_key_value_heads * config.head_dim
    assert config.intermediate_size == LLAMA_INTERMEDIATE_SIZE
    assert config.intermediate_size % 64 and config.intermediate_size % 128
    assert type(layer.input_layernorm).__name__ == "LlamaRMSNorm"
    assert hasattr(model.model, "rotary_emb")
    assert config.vocab_size == len(AutoTokenizer.from_pretrained(tiny_llama_dir))


def test_tokenizer_is_real_and_lossless(tiny_gpt2_dir: Path, tiny_llama_dir: Path) -> None:
    text = corpus_text()
    assert len(text) > 5000
    gpt2 = AutoTokenizer.from_pretrained(tiny_gpt2_dir)
    ids = gpt2(text).input_ids
    assert gpt2.decode(ids) == text
    assert len(ids) < len(text) / 2  # trained merges compress English prose
    assert gpt2.pad_token_id not in (gpt2.bos_token_id, gpt2.eos_token_id)

    llama = AutoTokenizer.from_pretrained(tiny_llama_dir)
    encoded = llama("Measure twice, cut once.").input_ids
    assert encoded[0] == llama.bos_token_id  # LLaMA convention: BOS prepended
    assert gpt2("Measure twice, cut once.").input_ids[0] != gpt2.bos_token_id
    assert llama.decode(encoded, skip_special_tokens=True) == "Measure twice, cut once."


def test_untied_bfloat16_build(tmp_path: Path) -> None:
    out = build_tiny_model("llama", tmp_path / "m", tie_word_embeddings=False, dtype="bfloat16")
    with safe_open(str(out / "model.safetensors"), framework="pt") as handle:
        assert "lm_head.weight" in set(handle.keys())
        assert handle.get_tensor("lm_head.weight").dtype == torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()


@pytest.mark.parametrize(
    ("family", "kwargs", "message"),
    [
        ("bert", {}, "unknown tiny-model family 'bert'"),
        ("gpt2", {"dtype": "int8"}, "unknown dtype 'int8'"),
    ],
)
def test_bad_arguments(family: str, kwargs: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        build_tiny_model(family, tmp_path / "m", **kwargs)  # type: ignore[arg-type]


def test_refuses_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        build_tiny_model("gpt2", tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_cli_prints_path_and_refuses_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli-model"
    assert main(["gpt2", str(out), "--seed", "3", "--untied"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert AutoModelForCausalLM.from_pretrained(out).config.tie_word_embeddings is False
    assert main(["gpt2", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["gpt2", str(out), "--force"]) == 0


def _logits(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_gguf_export_loads_with_same_logits(
    tiny_llama_dir: Path, tmp_path: Path, tied: bool
) -> None:
    source = tiny_llama_dir
    if not tied:
        source = build_tiny_model("llama", tmp_path / "untied", tie_word_embeddings=False)
    gguf_file = export_gguf(source, tmp_path / "tiny.gguf")
    assert gguf_file.read_bytes()[:4] == b"GGUF"

    adapter = HF_Causal_Adapter()
    reference = adapter.load_model(str(source), device="cpu")
    loaded = adapter.load_model(str(gguf_file), device="cpu")
    assert loaded.config.tie_word_embeddings is tied
    tokenizer = adapter.load_tokenizer(str(gguf_file))
    text = "A threshold chosen before the data arrives is a promise."
    ids = tokenizer(text).input_ids
    assert ids == adapter.load_tokenizer(str(source))(text).input_ids
    torch.testing.assert_close(_logits(loaded, ids), _logits(reference, ids), rtol=0, atol=1e-5)


def test_cli_gguf_only_for_llama(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["gpt2", str(tmp_path / "m"), "--gguf", str(tmp_path / "x.gguf")])
