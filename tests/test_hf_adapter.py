"""hf_causal and auto adapters on real tiny models: loading, options, errors, describe()."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from invarlock.adapters import AutoAdapter, HF_Causal_Adapter
from invarlock.core.errors import ConfigError, ModelLoadError

NETWORK_ENV = "INVARLOCK_ALLOW_NETWORK"


@pytest.fixture(autouse=True)
def _no_network_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NETWORK_ENV, raising=False)


@pytest.fixture
def adapter() -> HF_Causal_Adapter:
    return HF_Causal_Adapter()


def _copy_config_only(model_dir: Path, target: Path) -> Path:
    target.mkdir()
    shutil.copy(model_dir / "config.json", target / "config.json")
    return target


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize(
    ("fixture", "model_class"),
    [("tiny_gpt2_dir", "GPT2LMHeadModel"), ("tiny_llama_dir", "LlamaForCausalLM")],
)
def test_loads_local_dir_on_cpu(
    adapter: HF_Causal_Adapter, request: pytest.FixtureRequest, fixture: str, model_class: str
) -> None:
    model = adapter.load_model(str(request.getfixturevalue(fixture)), device="cpu")
    assert type(model).__name__ == model_class
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    with torch.no_grad():
        logits = model(torch.tensor([[3, 17, 42]])).logits
    assert logits.shape == (1, 3, model.config.vocab_size)
    assert torch.isfinite(logits).all()


def test_local_load_makes_no_network_connection(
    adapter: HF_Causal_Adapter, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network connection attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    model = adapter.load_model(str(tiny_llama_dir), device="cpu")
    assert adapter.load_tokenizer(str(tiny_llama_dir)) is not None
    assert model.config.model_type == "llama"


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [("auto", torch.float32), (None, torch.float32), ("bfloat16", torch.bfloat16)],
)
def test_dtype_option(
    adapter: HF_Causal_Adapter, tiny_llama_dir: Path, dtype: str | None, expected: torch.dtype
) -> None:
    model = adapter.load_model(str(tiny_llama_dir), device="cpu", dtype=dtype)
    assert {p.dtype for p in model.parameters()} == {expected}


def test_float16_alias(adapter: HF_Causal_Adapter, tiny_gpt2_dir: Path) -> None:
    model = adapter.load_model(str(tiny_gpt2_dir), device="cpu", dtype="fp16")
    assert adapter.describe(model)["dtype"] == "float16"


def test_device_map_is_passed_through(adapter: HF_Causal_Adapter, tiny_gpt2_dir: Path) -> None:
    # "meta" is the one placement observable without accelerators: transformers honours it and
    # the adapter must not move the model afterwards.
    model = adapter.load_model(str(tiny_gpt2_dir), device_map={"": "meta"})
    assert {p.device.type for p in model.parameters()} == {"meta"}
    info = adapter.describe(model)
    assert info["device"] == "meta"
    assert info["tied_weights"] == [["lm_head.weight", "transformer.wte.weight"]]  # by identity


def test_bin_checkpoint_loads_with_weights_only(
    adapter: HF_Causal_Adapter, tiny_gpt2_dir: Path, tmp_path: Path
) -> None:
    reference = adapter.load_model(str(tiny_gpt2_dir), device="cpu")
    bin_dir = _copy_config_only(tiny_gpt2_dir, tmp_path / "bin")
    torch.save(reference.state_dict(), bin_dir / "pytorch_model.bin")
    loaded = adapter.load_model(str(bin_dir), device="cpu")
    for name, tensor in reference.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (str(self.marker), "pwned"))  # type: ignore[return-value]


def test_bin_checkpoint_never_unpickles_code(
    adapter: HF_Causal_Adapter, tiny_gpt2_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "code-ran"
    evil_dir = _copy_config_only(tiny_gpt2_dir, tmp_path / "evil")
    state = dict(adapter.load_model(str(tiny_gpt2_dir), device="cpu").state_dict())
    state["payload"] = _RunsCodeWhenUnpickled(marker)
    torch.save(state, evil_dir / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="could not load model"):
        adapter.load_model(str(evil_dir), device="cpu")
    assert not marker.exists()


def test_safetensors_preferred_over_bin(
    adapter: HF_Causal_Adapter, tiny_gpt2_dir: Path, tmp_path: Path
) -> None:
    both = tmp_path / "both"
    shutil.copytree(tiny_gpt2_dir, both)
    (both / "pytorch_model.bin").write_bytes(b"not a checkpoint")  # would fail if read
    model = adapter.load_model(str(both), device="cpu")
    assert model.config.model_type == "gpt2"


# --------------------------------------------------------------------------- GGUF


def test_loads_gguf_file_and_dir_with_gguf_file(
    adapter: HF_Causal_Adapter, tiny_gguf: Path, tiny_llama_dir: Path
) -> None:
    from_file = adapter.load_model(str(tiny_gguf), device="cpu")
    from_dir = adapter.load_model(str(tiny_gguf.parent), device="cpu", gguf_file=tiny_gguf.name)
    reference = adapter.load_model(str(tiny_llama_dir), device="cpu")
    ids = torch.tensor([[0, 40, 300, 7]])
    with torch.no_grad():
        expected = reference(ids).logits
        torch.testing.assert_close(from_file(ids).logits, expected, rtol=0, atol=1e-5)
        torch.testing.assert_close(from_dir(ids).logits, expected, rtol=0, atol=1e-5)
    info = adapter.describe(from_file)
    assert (info["n_kv_head"], info["name_or_path"]) == (2, str(tiny_gguf.resolve()))


def test_gguf_tokenizer_ignores_neighbouring_tokenizer_files(
    adapter: HF_Causal_Adapter,
    tiny_gguf: Path,
    tiny_llama_dir: Path,
    tiny_gpt2_dir: Path,
    tmp_path: Path,
) -> None:
    shutil.copy(tiny_gguf, tmp_path / "model.gguf")
    for name in ("tokenizer.json", "tokenizer_config.json"):  # another model's tokenizer
        shutil.copy(tiny_gpt2_dir / name, tmp_path / name)
    text = "Keep the original when you change anything."
    expected = adapter.load_tokenizer(str(tiny_llama_dir))(text).input_ids
    for tokenizer in (
        adapter.load_tokenizer(str(tmp_path / "model.gguf")),
        adapter.load_tokenizer(str(tmp_path), gguf_file="model.gguf"),
    ):
        assert tokenizer(text).input_ids == expected


def test_dir_with_only_gguf_hints_gguf_file(adapter: HF_Causal_Adapter, tiny_gguf: Path) -> None:
    with pytest.raises(ModelLoadError, match=rf"no config\.json.*{tiny_gguf.name}.*gguf_file"):
        adapter.load_model(str(tiny_gguf.parent), device="cpu")


# --------------------------------------------------------------------------- errors


def test_hub_id_without_network_fails_at_once(adapter: HF_Causal_Adapter) -> None:
    start = time.monotonic()
    with pytest.raises(ModelLoadError) as info:
        adapter.load_model("openai-community/gpt2", device="cpu")
    assert time.monotonic() - start < 2.0
    assert NETWORK_ENV in str(info.value)
    assert "does not exist locally" in str(info.value)


@pytest.mark.parametrize("path", ["./no-such-model", "~/no-such-model-xyz", "a/b/c/missing"])
def test_missing_local_path(adapter: HF_Causal_Adapter, path: str) -> None:
    with pytest.raises(ModelLoadError, match="model path not found"):
        adapter.load_model(path, device="cpu")


def test_missing_path_under_existing_dir_is_local(
    adapter: HF_Causal_Adapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(ModelLoadError, match="model path not found: models/tiny-gpt2"):
        adapter.load_model("models/tiny-gpt2", device="cpu")


def test_dir_without_weights(
    adapter: HF_Causal_Adapter, tiny_gpt2_dir: Path, tmp_path: Path
) -> None:
    empty = _copy_config_only(tiny_gpt2_dir, tmp_path / "no-weights")
    with pytest.raises(ModelLoadError, match=r"no weights.*model\.safetensors"):
        adapter.load_model(str(empty), device="cpu")


def test_dir_without_config(adapter: HF_Causal_Adapter, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        adapter.load_model(str(tmp_path), device="cpu")


def test_non_gguf_file(adapter: HF_Causal_Adapter, tiny_gpt2_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"not a \.gguf file"):
        adapter.load_model(str(tiny_gpt2_dir / "model.safetensors"), device="cpu")


def test_unknown_option_lists_accepted(adapter: HF_Causal_Adapter, tiny_gpt2_dir: Path) -> None:
    expected = r"'torch_dtype'.*use 'dtype'.*accepted: dtype, device_map"
    with pytest.raises(ConfigError, match=expected):
        adapter.load_model(str(tiny_gpt2_dir), device="cpu", torch_dtype="float16")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"dtype": "float8"}, ConfigError, "unknown dtype 'float8'"),
        ({"device": "gpu"}, ConfigError, "unknown device 'gpu'"),
        ({"device": "cpu", "device_map": "auto"}, ConfigError, "either device"),
        ({"revision": "main"}, ConfigError, "revision='main' applies to Hub ids"),
    ],
)
def test_bad_options(
    adapter: HF_Causal_Adapter, tiny_gpt2_dir: Path, kwargs: dict, error: type, message: str
) -> None:
    device = kwargs.pop("device", "auto")
    with pytest.raises(error, match=message):
        adapter.load_model(str(tiny_gpt2_dir), device=device, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device(adapter: HF_Causal_Adapter, tiny_gpt2_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="'cuda:1' requested but CUDA is not available"):
        adapter.load_model(str(tiny_gpt2_dir), device="cuda:1")


# --------------------------------------------------------------------------- can_load / tokenizer


def test_can_load(
    adapter: HF_Causal_Adapter,
    tiny_gpt2_dir: Path,
    tiny_gguf: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert adapter.can_load(str(tiny_gpt2_dir))
    assert adapter.can_load(str(tiny_gguf))
    assert not adapter.can_load(str(tmp_path))  # no config.json
    assert not adapter.can_load(str(tmp_path / "missing"))
    assert not adapter.can_load("openai-community/gpt2")
    monkeypatch.setenv(NETWORK_ENV, "1")
    assert adapter.can_load("openai-community/gpt2")
    assert not adapter.can_load("./local/looking/path")


def test_load_tokenizer(adapter: HF_Causal_Adapter, tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    tokenizer = adapter.load_tokenizer(str(tiny_gpt2_dir))
    assert len(tokenizer) == 512
    assert tokenizer.decode(tokenizer("a ruler").input_ids) == "a ruler"
    weights_only = tmp_path / "no-tokenizer"
    weights_only.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_gpt2_dir / name, weights_only / name)
    assert adapter.load_tokenizer(str(weights_only)) is None


def test_broken_tokenizer_file_is_an_error(
    adapter: HF_Causal_Adapter, tiny_gpt2_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_gpt2_dir, broken)
    (broken / "tokenizer.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="could not load the tokenizer"):
        adapter.load_tokenizer(str(broken))


# --------------------------------------------------------------------------- describe


def test_describe_gpt2(adapter: HF_Causal_Adapter, tiny_gpt2_dir: Path) -> None:
    model = adapter.load_model(str(tiny_gpt2_dir), device="cpu")
    info = adapter.describe(model)
    unique = sum(p.numel() for p in model.parameters())  # parameters() de-duplicates ties
    assert info["n_params"] == unique
    assert info["tied_weights"] == [["lm_head.weight", "transformer.wte.weight"]]
    assert info["block_container"] == "transformer.h"
    expected = {
        "model_type": "gpt2",
        "family": "gpt2",
        "model_class": "GPT2LMHeadModel",
        "n_layer": 3,
        "n_head": 4,
        "n_kv_head": 4,
        "hidden_size": 64,
        "intermediate_size": 256,
        "vocab_size": 512,
        "dtype": "float32",
        "device": "cpu",
    }
    assert {key: info[key] for key in expected} == expected
    json.dumps(info)  # reports serialise it


def test_describe_untied_llama(adapter: HF_Causal_Adapter, tmp_path: Path) -> None:
    from invarlock.testing import build_tiny_model

    model_dir = build_tiny_model("llama", tmp_path / "untied", tie_word_embeddings=False)
    model = adapter.load_model(str(model_dir), device="cpu", dtype="bfloat16")
    info = adapter.describe(model)
    assert info["tied_weights"] == []
    assert info["n_params"] == sum(p.numel() for p in model.parameters())
    assert (info["n_head"], info["n_kv_head"], info["head_dim"]) == (4, 2, 16)
    assert info["intermediate_size"] == 176
    assert info["block_container"] == "model.layers"
    assert info["dtype"] == "bfloat16"


def test_describe_counts_tied_once(
    adapter: HF_Causal_Adapter, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    from invarlock.testing import build_tiny_model

    tied = adapter.describe(adapter.load_model(str(tiny_llama_dir), device="cpu"))
    untied_dir = build_tiny_model("llama", tmp_path / "u", tie_word_embeddings=False)
    untied = adapter.describe(adapter.load_model(str(untied_dir), device="cpu"))
    assert untied["n_params"] - tied["n_params"] == 512 * 64  # one extra LM head
    assert tied["tied_weights"] == [["lm_head.weight", "model.embed_tokens.weight"]]


# --------------------------------------------------------------------------- auto


def test_auto_adapter_delegates(tiny_llama_dir: Path, tiny_gguf: Path) -> None:
    auto = AutoAdapter()
    assert (auto.name, auto.backend) == ("auto", "transformers")
    assert AutoAdapter.detect_format(str(tiny_llama_dir)) == "hf_dir"
    assert AutoAdapter.detect_format(str(tiny_gguf)) == "gguf"
    assert AutoAdapter.detect_format("org/model") == "hub"
    model = auto.load_model(str(tiny_llama_dir), device="cpu")
    assert auto.describe(model) == HF_Causal_Adapter().describe(model)
    assert auto.can_load(str(tiny_gguf))
    with pytest.raises(ModelLoadError, match=NETWORK_ENV):
        auto.load_model("org/model")


# --------------------------------------------------------------------------- import hygiene


def test_importing_adapters_does_not_import_torch() -> None:
    code = (
        "import sys, invarlock.adapters, invarlock.adapters.hf_causal, invarlock.adapters.auto;"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert result.stdout.strip() == "[]"
