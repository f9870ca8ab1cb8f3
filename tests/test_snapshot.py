"""Snapshot/restore of edited tensors: bit-exact, tied-aware, tamper-evident, memory and disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from invarlock.adapters import HF_Causal_Adapter
from invarlock.core.errors import RestoreError
from invarlock.runner.snapshot import Snapshot, choose_mode

MODES = ("memory", "disk")


def _load(model_dir: Path, dtype: str = "auto") -> torch.nn.Module:
    return HF_Causal_Adapter().load_model(str(model_dir), device="cpu", dtype=dtype)


def _weight_names(model: torch.nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.dim() == 2]


def _raw_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every tensor's bytes, so comparisons are bit-exact (NaN payloads, -0.0 included)."""
    return {
        name: t.detach().clone().reshape(-1).view(torch.uint8)
        for name, t in model.state_dict().items()
    }


def _assert_bit_exact(model: torch.nn.Module, reference: dict[str, torch.Tensor]) -> None:
    now = _raw_state(model)
    assert now.keys() == reference.keys()
    for name, raw in reference.items():
        assert torch.equal(now[name], raw), name


def _corrupt(model: torch.nn.Module, names: list[str]) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in names:
            params[name].mul_(1.25).add_(0.5)
        first = params[names[0]]
        first.view(-1)[:3] = torch.tensor([float("nan"), float("inf"), -0.0], dtype=first.dtype)


@pytest.mark.parametrize("mode", MODES)
def test_restore_is_bit_exact_after_corruption(
    tiny_gpt2_dir: Path, tmp_path: Path, mode: str
) -> None:
    model = _load(tiny_gpt2_dir)
    names = _weight_names(model)
    reference = _raw_state(model)
    snapshot = Snapshot.take(model, names, mode=mode, directory=tmp_path)
    assert snapshot.mode == mode
    _corrupt(model, names)
    assert not snapshot.verify(model)
    assert set(snapshot.mismatches(model)) >= set(snapshot.names)
    snapshot.restore(model)
    _assert_bit_exact(model, reference)
    assert snapshot.verify(model)
    snapshot.close()


@pytest.mark.parametrize("mode", MODES)
def test_nan_payloads_in_originals_survive(tiny_llama_dir: Path, tmp_path: Path, mode: str) -> None:
    model = _load(tiny_llama_dir)
    weight = model.model.layers[0].mlp.down_proj.weight
    with torch.no_grad():
        # Two distinct NaN bit patterns and a negative zero: equal-by-value checks miss these.
        weight.view(-1).view(torch.int32)[:3] = torch.tensor(
            [0x7FC00001, 0x7FA00ABC, -(2**31)], dtype=torch.int32
        )
    reference = _raw_state(model)
    names = ["model.layers.0.mlp.down_proj.weight"]
    with Snapshot.take(model, names, mode=mode, directory=tmp_path) as snapshot:
        with torch.no_grad():
            weight.view(-1).view(torch.int32)[:3] = torch.tensor([0x7FC00000] * 3)
        assert snapshot.mismatches(model) == names
        snapshot.restore(model)
    _assert_bit_exact(model, reference)


def test_tied_tensors_stored_once_and_both_restored(tiny_gpt2_dir: Path) -> None:
    model = _load(tiny_gpt2_dir)
    reference = _raw_state(model)
    snapshot = Snapshot.take(model, ["transformer.wte.weight", "lm_head.weight"], mode="memory")
    assert snapshot.names == ("lm_head.weight",)
    assert snapshot.aliases == {"lm_head.weight": ("lm_head.weight", "transformer.wte.weight")}
    assert snapshot.nbytes == 512 * 64 * 4

    # Naming one alias covers the other: the edit may write through either name.
    only_wte = Snapshot.take(model, ["transformer.wte.weight"], mode="memory")
    assert only_wte.aliases["transformer.wte.weight"] == snapshot.aliases["lm_head.weight"]
    assert only_wte.digest != snapshot.digest  # names are part of the digest

    # An edit that unties the head: both tensors must come back.
    with torch.no_grad():
        model.transformer.wte.weight.zero_()
    model.lm_head.weight = torch.nn.Parameter(torch.full((512, 64), 3.0), requires_grad=False)
    assert snapshot.mismatches(model) == ["lm_head.weight", "transformer.wte.weight"]
    snapshot.restore(model)
    _assert_bit_exact(model, reference)


def test_digest_tracks_the_bytes(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    model = _load(tiny_gpt2_dir)
    names = _weight_names(model)
    first = Snapshot.take(model, names, mode="memory")
    on_disk = Snapshot.take(model, list(reversed(names)), mode="disk", directory=tmp_path)
    assert first.digest == on_disk.digest  # independent of mode and name order
    assert len(first.digest) == 64
    with torch.no_grad():
        weight = model.transformer.h[2].mlp.c_proj.weight
        weight.view(-1).view(torch.int32)[7] ^= 1  # flip the lowest mantissa bit
    changed = Snapshot.take(model, names, mode="memory")
    assert changed.digest != first.digest
    assert first.mismatches(model) == ["transformer.h.2.mlp.c_proj.weight"]
    on_disk.close()


def test_tampered_disk_snapshot_raises(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    model = _load(tiny_gpt2_dir)
    names = ["transformer.h.0.attn.c_attn.weight"]
    snapshot = Snapshot.take(model, names, mode="disk", directory=tmp_path)
    assert snapshot.path is not None
    data = bytearray(snapshot.path.read_bytes())
    data[-5] ^= 0xFF  # the last tensor's bytes sit at the end of the file
    snapshot.path.write_bytes(bytes(data))
    with pytest.raises(RestoreError, match=r"not bit-exact: transformer\.h\.0\.attn\.c_attn"):
        snapshot.restore(model)


def test_tampered_memory_snapshot_raises(tiny_gpt2_dir: Path) -> None:
    model = _load(tiny_gpt2_dir)
    snapshot = Snapshot.take(model, ["transformer.h.1.mlp.c_fc.weight"], mode="memory")
    assert snapshot._store is not None  # the stored copy is private; reach in to tamper
    snapshot._store["transformer.h.1.mlp.c_fc.weight"][0, 0] += 1.0
    with pytest.raises(RestoreError, match=r"transformer\.h\.1\.mlp\.c_fc\.weight differ"):
        snapshot.restore(model)


def test_shape_change_and_missing_tensor_are_named(tiny_gpt2_dir: Path) -> None:
    model = _load(tiny_gpt2_dir)
    snapshot = Snapshot.take(model, ["transformer.h.0.mlp.c_fc.weight"], mode="memory")
    model.transformer.h[0].mlp.c_fc.weight = torch.nn.Parameter(torch.zeros(2, 2))
    with pytest.raises(
        RestoreError, match=r"cannot restore 'transformer\.h\.0\.mlp\.c_fc\.weight'"
    ):
        snapshot.restore(model)
    del model.transformer.h[0].mlp.c_fc.weight
    with pytest.raises(RestoreError, match="no longer has a tensor named"):
        snapshot.restore(model)


def test_disk_file_is_atomic_readable_and_removed(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    model = _load(tiny_gpt2_dir)
    names = _weight_names(model)
    with Snapshot.take(model, names, mode="disk", directory=tmp_path) as snapshot:
        path = snapshot.path
        assert path is not None and path.parent == tmp_path
        assert sorted(os.listdir(tmp_path)) == [path.name]  # no temp file left behind
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            assert sorted(handle.keys()) == sorted(snapshot.names)
            assert handle.metadata()["invarlock_digest"] == snapshot.digest
            key = "transformer.h.0.attn.c_proj.weight"
            assert torch.equal(handle.get_tensor(key), model.get_parameter(key))
    assert not path.exists()
    assert snapshot.closed
    with pytest.raises(RestoreError, match="closed"):
        snapshot.restore(model)


def test_deleted_disk_file_is_reported(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    model = _load(tiny_gpt2_dir)
    snapshot = Snapshot.take(model, _weight_names(model), mode="disk", directory=tmp_path)
    assert snapshot.path is not None
    snapshot.path.unlink()
    with pytest.raises(RestoreError, match="is missing"):
        snapshot.restore(model)


@pytest.mark.parametrize("mode", MODES)
def test_bfloat16_model(tiny_llama_dir: Path, tmp_path: Path, mode: str) -> None:
    model = _load(tiny_llama_dir, dtype="bfloat16")
    names = [n for n, _ in model.named_parameters()]
    reference = _raw_state(model)
    with Snapshot.take(model, names, mode=mode, directory=tmp_path) as snapshot:
        assert snapshot.nbytes == sum(p.numel() * 2 for p in model.parameters())
        _corrupt(model, _weight_names(model))
        snapshot.restore(model)
    _assert_bit_exact(model, reference)


def test_non_contiguous_parameter() -> None:
    module = torch.nn.Module()
    module.weight = torch.nn.Parameter(torch.randn(5, 3).t(), requires_grad=False)
    assert not module.weight.is_contiguous()
    original = module.weight.detach().clone()
    snapshot = Snapshot.take(module, ["weight"], mode="memory")
    with torch.no_grad():
        module.weight.fill_(float("nan"))
    snapshot.restore(module)
    assert torch.equal(module.weight, original)
    assert not module.weight.is_contiguous()  # restored in place, layout untouched


def test_auto_mode_rule(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    model = _load(tiny_gpt2_dir)
    names = _weight_names(model)
    assert Snapshot.take(model, names, directory=tmp_path).mode == "memory"
    with Snapshot.take(model, names, directory=tmp_path, disk_threshold_bytes=1024) as snap:
        assert snap.mode == "disk"
    assert choose_mode(10**18, disk_threshold_bytes=10**19) == "disk"  # beyond available RAM
    assert choose_mode(1024, disk_threshold_bytes=10**9) == "memory"


def test_bad_arguments(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    model = _load(tiny_gpt2_dir)
    with pytest.raises(KeyError, match=r"no parameter or buffer named 'transformer\.h\.9\.bogus'"):
        Snapshot.take(model, ["transformer.h.9.bogus"])
    with pytest.raises(ValueError, match="mode must be"):
        Snapshot.take(model, ["lm_head.weight"], mode="ram")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a single string"):
        Snapshot.take(model, "lm_head.weight")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Snapshot.take(model, ["lm_head.weight"], mode="disk", directory=tmp_path / "nope")


def test_meta_tensors_are_refused(tiny_gpt2_dir: Path) -> None:
    model = HF_Causal_Adapter().load_model(str(tiny_gpt2_dir), device_map={"": "meta"})
    with pytest.raises(RestoreError, match=r"'lm_head\.weight' is on the meta device"):
        Snapshot.take(model, ["lm_head.weight"])
