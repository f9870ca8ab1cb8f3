"""quant_rtn's gguf grids against gguf's own quantizer: the same codes, scales and values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("gguf")
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize

from invarlock.edits import EditConfigError, get_edit
from invarlock.edits.codes import codes_of_edited, decode, quantize_with_codes_
from invarlock.edits.config import parse_rtn
from invarlock.edits.kernels import quantize_

QTYPES = {"gguf_q8_0": GGMLQuantizationType.Q8_0, "gguf_q4_0": GGMLQuantizationType.Q4_0}


def realistic_weight() -> torch.Tensor:
    """A trained-looking matrix: heavy-tailed rows, outliers, an all-zero block, a row of
    zeros, tied extremes of both signs, tiny and huge blocks."""
    generator = torch.Generator().manual_seed(7)
    weight = torch.randn(192, 320, generator=generator) * 0.02
    weight *= torch.exp(torch.randn(192, 1, generator=generator))  # per-row spread
    weight[torch.rand(weight.shape, generator=generator) < 0.002] *= 40  # outliers
    weight[4, 32:64] = 0.0  # an all-zero block
    weight[5] = 0.0  # an all-zero row
    weight[6, :32] = torch.linspace(-1, 1, 32)  # +max and -max tie: the first one wins
    weight[7, 64:96] = 1e-6 * torch.randn(32, generator=generator)  # scale in fp16 subnormals
    weight[8, 96:128] = 3.0 * torch.randn(32, generator=generator)
    weight[9, 128:160] = weight[9, 128:160].abs() + 0.01  # one-signed block
    return weight


def gguf_blocks(weight: torch.Tensor, grid: str) -> tuple[np.ndarray, np.ndarray]:
    """(fp16 scales as float32, integer codes) as gguf writes them, block by block."""
    raw = quantize(weight.numpy(), QTYPES[grid]).reshape(weight.shape[0], -1)
    if grid == "gguf_q8_0":
        blocks = raw.reshape(weight.shape[0], -1, 34)
        scales = blocks[..., :2].copy().view(np.float16)[..., 0].astype(np.float32)
        codes = blocks[..., 2:].copy().view(np.int8).reshape(weight.shape)
    else:
        blocks = raw.reshape(weight.shape[0], -1, 18)
        scales = blocks[..., :2].copy().view(np.float16)[..., 0].astype(np.float32)
        packed = blocks[..., 2:]
        low, high = packed & 0x0F, packed >> 4
        codes = np.concatenate([low, high], axis=-1).astype(np.int8) - 8
        codes = codes.reshape(weight.shape)
    return scales, codes


@pytest.mark.parametrize("grid", list(QTYPES))
def test_grid_is_bit_equal_to_gguf_quants(grid: str) -> None:
    weight = realistic_weight()
    spec = parse_rtn({"grid": grid}).spec
    edited = weight.clone()
    _, codes = quantize_with_codes_(edited, 0, spec)

    expected = torch.from_numpy(dequantize(quantize(weight.numpy(), QTYPES[grid]), QTYPES[grid]))
    assert torch.equal(edited, expected)
    scales, gguf_codes = gguf_blocks(weight, grid)
    assert torch.equal(codes.scale, torch.from_numpy(scales))
    assert torch.equal(codes.codes, torch.from_numpy(gguf_codes))
    assert torch.equal(decode(codes, 0, spec, torch.float32), edited)
    assert not edited[4, 32:64].any() and not edited[5].any()


@pytest.mark.parametrize("grid", list(QTYPES))
def test_plain_group32_rtn_is_not_gguf(grid: str) -> None:
    """Why the grid exists: the ordinary symmetric group-32 RTN lands elsewhere."""
    weight = realistic_weight()
    plain = weight.clone()
    quantize_(plain, 0, parse_rtn({"bits": 8 if grid == "gguf_q8_0" else 4, "group_size": 32}).spec)
    expected = torch.from_numpy(dequantize(quantize(weight.numpy(), QTYPES[grid]), QTYPES[grid]))
    assert not torch.equal(plain, expected)


def test_edit_on_a_grid_records_codes_for_export(llama) -> None:
    edit = get_edit("quant_rtn")
    config = edit.parse({"grid": "gguf_q4_0", "exclude": ["*down_proj"]})
    result = edit.apply(llama, config)
    assert result.layers and all(layer.scheme == "gguf_q4_0/group32" for layer in result.layers)
    weight = llama.model.layers[0].self_attn.q_proj.weight
    codes = codes_of_edited(weight, 0, config.spec)
    assert int(codes.codes.min()) >= -8 and int(codes.codes.max()) <= 7
    assert torch.equal(decode(codes, 0, config.spec, weight.dtype), weight.detach())


def test_grid_refuses_widths_gguf_cannot_block(llama) -> None:
    edit = get_edit("quant_rtn")
    with pytest.raises(ValueError, match="divisible by 32, got 176"):
        edit.apply(llama, edit.parse({"grid": "gguf_q8_0"}))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"grid": "q8"}, "edit.grid: must be one of gguf_q8_0, gguf_q4_0"),
        ({"grid": "gguf_q8_0", "bits": 4}, "edit.bits: gguf_q8_0 fixes bits = 8"),
        ({"grid": "gguf_q4_0", "symmetric": False}, "edit.symmetric: gguf_q4_0 fixes symmetric"),
        ({"grid": "gguf_q8_0", "group_size": 64}, "edit.group_size: gguf_q8_0 fixes group_size"),
        ({"grid": "gguf_q8_0", "clamp_ratio": 0.01}, "edit.clamp_ratio: gguf_q8_0 takes no"),
    ],
)
def test_grid_conflicts_are_refused(params: dict, message: str) -> None:
    with pytest.raises(EditConfigError) as caught:
        parse_rtn(params)
    assert str(caught.value).startswith(message)


def test_grid_agrees_with_matching_keys() -> None:
    spec = parse_rtn({"grid": "gguf_q8_0", "bits": 8, "group_size": 32}).spec
    assert (spec.bits, spec.group_size, spec.symmetric, spec.grid) == (8, 32, True, "gguf_q8_0")
