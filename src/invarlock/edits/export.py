"""Ship a quant_rtn model as integer codes plus scales, and load it back.

``out_dir`` after :func:`export_quantized` (or :func:`write_codes`, its form for exporters):

``model.safetensors`` (or, above one shard, ``model-0000i-of-0000n.safetensors`` and
``model.safetensors.index.json``; written shard by shard)
    For each quantized weight ``W`` (named as ``model.named_parameters()`` names it):
    ``W.codes`` (int8 when symmetric, uint8 when asymmetric, one byte per weight, not packed;
    ``W``'s own shape and layout, so a GPT-2 ``Conv1D`` weight stays ``(in, out)``),
    ``W.scale`` (float32, ``(out, n_groups)``) and, asymmetric only, ``W.zero_point`` (uint8,
    ``(out, n_groups)``). Groups run along the input axis; the last may be partial. Every other
    tensor of the state dict is stored as is, once per shared tensor.
``quantization.json``
    Format name and version, the quant_rtn parameters, and per quantized weight its shape,
    ``out_axis``, dtype and aliases (tied names); aliases of other shared tensors.
``config.json``
    ``model.config.save_pretrained``: enough to rebuild the architecture offline.
tokenizer files
    Copied from ``source_dir`` when given.

Dequantizing is ``cast((codes - zero_point) * scale)`` in float32 (float64 for float64
weights), exactly the arithmetic of the in-place edit, so :func:`load_quantized` returns the
edited weights value for value (a ``-0.0`` comes back as ``+0.0``: a code has no sign).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from invarlock.adapters.hf_loading import TOKENIZER_FILES
from invarlock.core.edit import EditResult
from invarlock.core.errors import ModelLoadError
from invarlock.core.structure import StorageKey, dtype_name, storage_key
from invarlock.edits.codes import Codes, decode
from invarlock.edits.config import QuantSpec, RTNConfig, parse_rtn
from invarlock.edits.kernels import Workspace
from invarlock.edits.rtn import QuantRTN, RTNCodes

__all__ = ["FORMAT", "FORMAT_VERSION", "export_quantized", "load_quantized", "write_codes"]

FORMAT = "invarlock-rtn"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
MANIFEST_FILE = "quantization.json"
#: Files copied from ``source_dir`` when present: the tokenizer's and the generation config.
COPIED_FILES = (*TOKENIZER_FILES, "generation_config.json")
_SUFFIXES = (".codes", ".scale", ".zero_point")


def export_quantized(
    model: nn.Module,
    config: RTNConfig | Mapping[str, Any],
    out_dir: str | Path,
    *,
    result: EditResult | None = None,
    source_dir: str | Path | None = None,
    max_shard_bytes: int | None = None,
) -> Path:
    """Write ``model``, quantized with ``config``, as integer codes to ``out_dir``.

    Works on the model in either state. Weights that ``result`` (what ``apply`` returned on
    this model) says were quantized with this configuration are written as they are: their
    codes are rebuilt exactly from the scales it recorded, since the weights alone do not
    determine them. Every other selected weight is quantized in place first, exactly as
    ``apply`` would. Either way the model ends up as ``apply`` leaves it and the files decode
    to it value for value. A weight that changed after the edit (a snapshot restore, say)
    counts as not quantized; so does every weight when no ``result`` is given: an edited
    model cannot be told from an unedited one and would be quantized again. ``config`` is an
    ``RTNConfig`` or the raw parameters (flat or under ``plan:``). Tensors are written as
    they are produced, in shards of at most ``max_shard_bytes`` (default 5 GiB). Returns
    ``out_dir``.
    """
    rtn = config if isinstance(config, RTNConfig) else parse_rtn(config)
    codes = QuantRTN().export(rtn, result)
    return write_codes(
        model, codes, out_dir, source_dir=source_dir, max_shard_bytes=max_shard_bytes
    )


def write_codes(
    model: nn.Module,
    codes: RTNCodes,
    out_dir: str | Path,
    *,
    source_dir: str | Path | None = None,
    max_shard_bytes: int | None = None,
) -> Path:
    """:func:`export_quantized` for quant_rtn's integer form (``QuantRTN.export``)."""
    hf_config = getattr(model, "config", None)
    if not hasattr(hf_config, "save_pretrained"):
        raise TypeError(
            f"export_quantized: {type(model).__name__} has no transformers config"
            " (model.config), so the architecture could not be rebuilt; export a"
            " transformers model"
        )
    source = None if source_dir is None else Path(source_dir)
    if source is not None and not source.is_dir():
        raise FileNotFoundError(f"export_quantized: source_dir {source} is not a directory")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    from invarlock.exporters.shards import ShardWriter

    tensors = ShardWriter(out, max_shard_bytes, metadata={"quantization": FORMAT})
    layout: dict[str, dict[str, Any]] = {}
    covered: set[str] = set()
    workspace = Workspace()
    for target in codes.targets(model):
        weight = target.weight
        try:
            coded = codes.codes(target, workspace)
        except ValueError as error:
            raise ValueError(f"export_quantized: {target.param}: {error}") from error
        name = target.canonical
        tensors.add(f"{name}.codes", coded.codes)
        tensors.add(f"{name}.scale", coded.scale)
        if coded.zero_point is not None:
            tensors.add(f"{name}.zero_point", coded.zero_point)
        layout[name] = {
            "module": target.module,
            "module_type": target.module_type,
            "shape": list(weight.shape),
            "out_axis": target.out_axis,
            "dtype": dtype_name(weight.dtype),
            "aliases": [alias for alias in target.aliases if alias != name],
        }
        covered.update(target.aliases)

    aliases: dict[str, str] = {}
    stored: dict[StorageKey, str] = {}
    for name, tensor in model.state_dict().items():
        if name in covered:
            continue
        key = storage_key(tensor)
        if key in stored:
            aliases[name] = stored[key]
            continue
        stored[key] = name
        tensors.add(name, tensor)
    tensors.close()
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "quantization": codes.config.to_dict(),
        "tensors": layout,
        "aliases": aliases,
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    hf_config.save_pretrained(out)
    if source is not None:
        for file_name in COPIED_FILES:
            if (source / file_name).is_file():
                shutil.copy2(source / file_name, out / file_name)
    return out


def load_quantized(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the transformers model exported to ``path`` and load its dequantized weights.

    Works offline: the architecture comes from ``config.json``
    (``AutoModelForCausalLM.from_config``). Raises ``ModelLoadError`` naming the file at fault.
    """
    root = Path(path)
    manifest = _read_manifest(root)
    spec = _spec_from(manifest, root)
    weights_path = root / WEIGHTS_FILE
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    from invarlock.exporters.shards import shard_files

    tensors: dict[str, torch.Tensor] = {}
    try:
        for file in shard_files(root):
            tensors.update(load_file(str(file), device="cpu"))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(
            f"{weights_path}: missing or unreadable, and so is its shard index ({error});"
            " not a complete invarlock RTN export"
        ) from error
    state: dict[str, torch.Tensor] = {}
    for name, entry in manifest["tensors"].items():
        try:
            codes = Codes(
                tensors[f"{name}.codes"],
                tensors[f"{name}.scale"],
                tensors.get(f"{name}.zero_point"),
            )
            dtype = getattr(torch, entry["dtype"])
            weight = decode(codes, int(entry["out_axis"]), spec, dtype)
        except (KeyError, AttributeError, ValueError) as error:
            raise ModelLoadError(f"{weights_path}: quantized tensor {name!r}: {error}") from error
        if list(weight.shape) != list(entry["shape"]):
            raise ModelLoadError(
                f"{weights_path}: {name!r} decodes to shape {list(weight.shape)},"
                f" manifest says {entry['shape']}"
            )
        for alias in (name, *entry.get("aliases", [])):
            state[alias] = weight
    quantized = {f"{name}{suffix}" for name in manifest["tensors"] for suffix in _SUFFIXES}
    for name, tensor in tensors.items():
        if name not in quantized:
            state[name] = tensor
    for alias, name in manifest.get("aliases", {}).items():
        if name not in state:
            raise ModelLoadError(f"{root / MANIFEST_FILE}: alias {alias!r} names missing {name!r}")
        state[alias] = state[name]

    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(root))
    _match_dtypes(model, state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ModelLoadError(f"{weights_path}: does not fit config.json: {error}") from error
    return model.to(device).eval()


def _read_manifest(root: Path) -> dict[str, Any]:
    manifest_path = root / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{manifest_path}: missing; not an invarlock RTN export") from None
    except json.JSONDecodeError as error:
        raise ModelLoadError(f"{manifest_path}: not valid JSON: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelLoadError(f"{manifest_path}: format is not {FORMAT!r}")
    if manifest.get("version") != FORMAT_VERSION:
        raise ModelLoadError(
            f"{manifest_path}: version {manifest.get('version')!r} is not supported"
            f" (this invarlock reads version {FORMAT_VERSION})"
        )
    if not isinstance(manifest.get("tensors"), dict):
        raise ModelLoadError(f"{manifest_path}: 'tensors' must be a mapping")
    return manifest


def _spec_from(manifest: Mapping[str, Any], root: Path) -> QuantSpec:
    params = manifest.get("quantization")
    if not isinstance(params, Mapping):
        raise ModelLoadError(f"{root / MANIFEST_FILE}: 'quantization' must be a mapping")
    try:
        return parse_rtn(params).spec
    except ValueError as error:
        raise ModelLoadError(f"{root / MANIFEST_FILE}: {error}") from error


def _match_dtypes(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Give each parameter and buffer the dtype it was exported with (load_state_dict would
    otherwise cast the values to the freshly built model's dtype)."""
    for name, tensor in state.items():
        module_name, _, leaf = name.rpartition(".")
        module = model.get_submodule(module_name)
        current = getattr(module, leaf, None)
        if isinstance(current, torch.Tensor) and current.dtype != tensor.dtype:
            current.data = current.data.to(tensor.dtype)
