"""``gguf``: llama.cpp / ollama / LM Studio files, ``Q8_0`` or ``Q4_0``, for Llama models.

Only an edit made on gguf's own grid (``edit.grid: gguf_q8_0 | gguf_q4_0``) is accepted, so
the blocks in the file hold exactly the codes and scales the guards validated; every
quantized tensor is additionally checked to dequantize (with ``gguf.quants``) to the guarded
weight bit for bit before it is written. q/k rows are put in llama.cpp's rotary order.

When the model came from a GGUF file, that file's metadata (tokenizer included) is copied,
``general.file_type`` updated, and its unquantized tensors are copied with their own type;
otherwise the metadata is built from ``config.json`` and the HF tokenizer directory and the
other tensors keep the model's dtype (F32, F16 or BF16).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invarlock.core.structure import StorageKey, storage_key
from invarlock.edits.config import GGUF_GRIDS
from invarlock.exporters.base import ExportError, Source, refuse_without_codes

__all__ = ["GGUFExporter"]

#: Model types whose tensors and metadata this exporter maps (transformers' GGUF loader too).
LLAMA_FAMILY = ("llama",)


def _qtype(grid: str) -> Any:
    """gguf's tensor type for ``grid`` (``gguf_q8_0`` -> ``Q8_0``)."""
    import gguf

    return gguf.GGMLQuantizationType[grid.removeprefix("gguf_").upper()]


def _file_type(grid: str) -> int:
    """``general.file_type`` of a file whose block matrices are on ``grid``."""
    import gguf

    return int(gguf.LlamaFileType[f"MOSTLY_{grid.removeprefix('gguf_').upper()}"])


class GGUFExporter:
    name = "gguf"
    loader = "transformers.AutoModelForCausalLM.from_pretrained(gguf_file=...)"
    dirname = "model-gguf"

    def refuse_edit(self, codes: Any) -> str | None:
        if reason := refuse_without_codes(codes):
            return reason
        spec = codes.spec
        if spec.grid in GGUF_GRIDS:
            return None
        nearest = "gguf_q8_0" if spec.bits >= 6 else "gguf_q4_0"
        return (
            f"this edit ({spec.bits}-bit {spec.scheme}) is not on llama.cpp's grid (blocks of"
            " 32, symmetric, fp16 block scale, gguf's rounding), so a GGUF file could not hold"
            f" the codes the guards validated; the nearest edit that fits is edit.grid: {nearest}"
        )

    def refuse_model(self, model: Any, codes: Any, source: Source) -> str | None:
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        if model_type not in LLAMA_FAMILY:
            return f"it handles Llama-family models (model_type llama), not {model_type!r}"
        if source.gguf_path is None:
            return _tokenizer_problem(source)
        return None

    def file_name(self, codes: Any) -> str:
        return f"model-{codes.spec.grid.removeprefix('gguf_')}.gguf"

    def write(self, model: Any, codes: Any, out: Path, source: Source) -> None:
        import gguf

        out.mkdir(parents=True)
        path = out / self.file_name(codes)
        grid = codes.spec.grid
        if source.gguf_path is not None:
            reader = gguf.GGUFReader(source.gguf_path)
            arch = str(reader.fields[gguf.Keys.General.ARCHITECTURE].contents())
            writer = gguf.GGUFWriter(str(path), arch, use_temp_file=True)  # spooled: bounded memory
            _copy_metadata(reader, writer, _file_type(grid))
        else:
            reader, arch = None, "llama"
            writer = gguf.GGUFWriter(str(path), arch, use_temp_file=True)  # spooled: bounded memory
            _hf_metadata(model, source, writer, _file_type(grid))
        try:
            _add_tensors(model, codes, writer, reader, arch)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()

    def load(self, out: Path, model: Any) -> Any:
        from transformers import AutoModelForCausalLM

        files = sorted(out.glob("*.gguf"))
        return AutoModelForCausalLM.from_pretrained(
            out, gguf_file=files[0].name, dtype=model.dtype
        ).eval()


def _copy_metadata(reader: Any, writer: Any, file_type: int) -> None:
    """Every key of the source file (tokenizer included) but the header's and the file type."""
    import gguf

    skip = {gguf.Keys.General.ARCHITECTURE, gguf.Keys.General.FILE_TYPE}
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in skip:
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    writer.add_file_type(file_type)


def _tokenizer_problem(source: Source) -> str | None:
    """Why the HF tokenizer of ``source`` cannot be embedded, or ``None``."""
    import json

    if source.model_dir is None or not (source.model_dir / "tokenizer.json").is_file():
        return (
            "the model came neither from a GGUF file nor from a directory with tokenizer.json,"
            " so there is no tokenizer to embed"
        )
    try:
        spec = json.loads((source.model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"{source.model_dir / 'tokenizer.json'} is unreadable: {error}"
    kind = (spec.get("model") or {}).get("type")
    if kind != "BPE":
        return f"embedding a {kind} tokenizer is not supported (byte-level BPE only)"
    return None


def _hf_metadata(model: Any, source: Source, writer: Any, file_type: int) -> None:
    from invarlock.exporters.gguf_llama import tokenizer_metadata, write_llama_metadata

    problem = _tokenizer_problem(source)
    if problem is not None:
        raise ExportError(f"gguf: {problem}")
    config = model.config.to_dict()
    name = str(getattr(model.config, "_name_or_path", "") or "model").rstrip("/").split("/")[-1]
    write_llama_metadata(
        writer, config, tokenizer_metadata(source.model_dir), name=name, file_type=file_type
    )


def _gguf_names(model: Any, arch: str) -> dict[str, str]:
    """HF parameter name -> GGUF tensor name, for every parameter with one."""
    import gguf

    arch_id = next(key for key, value in gguf.MODEL_ARCH_NAMES.items() if value == arch)
    name_map = gguf.get_tensor_name_map(arch_id, model.config.num_hidden_layers)
    names = {}
    for hf_name, _ in model.state_dict().items():
        base, _, suffix = hf_name.rpartition(".")
        mapped = name_map.get_name(base)
        if mapped is not None:
            names[hf_name] = f"{mapped}.{suffix}"
    return names


def _quantized_blocks(model: Any, target: Any, codes: Any) -> Any:
    """The edited weight as gguf blocks (q/k rows in llama.cpp order), checked exactly.

    The codes and fp16 scales the edit recorded give gguf's own dequantized values
    ``q × fp16(d)`` in float32 (whatever the model's dtype); ``gguf.quants`` encodes those
    back into the same codes and scales, which is checked by decoding them again.
    """
    import numpy as np
    import torch
    from gguf import quants

    from invarlock.edits.codes import decode
    from invarlock.exporters.gguf_llama import llamacpp_rope_order

    spec = codes.spec
    weight = target.weight.detach()
    values = decode(codes.codes(target), target.out_axis, spec, torch.float32)
    if not torch.equal(values.to(weight.dtype), weight):
        raise ExportError(
            f"gguf: {target.canonical} does not decode from the edit's codes (changed after"
            " the edit?); nothing that the guards did not validate is written"
        )
    array = values.cpu().numpy()
    heads = {
        "q_proj": model.config.num_attention_heads,
        "k_proj": model.config.num_key_value_heads,
    }
    projection = target.canonical.rsplit(".", 2)[-2]
    if projection in heads:
        array = np.ascontiguousarray(llamacpp_rope_order(array, heads[projection]))
    qtype = _qtype(spec.grid)
    blocks = quants.quantize(array, qtype)
    if not np.array_equal(quants.dequantize(blocks, qtype), array):
        raise ExportError(f"gguf: {target.canonical} is not on the {spec.grid} grid")
    return blocks


def _add_tensors(model: Any, codes: Any, writer: Any, reader: Any, arch: str) -> None:
    import gguf
    import numpy as np
    import torch

    qtype = _qtype(codes.spec.grid)
    names = _gguf_names(model, arch)
    state = model.state_dict()
    targets = {}
    for target in codes.targets(model):
        if target.canonical not in names:
            raise ExportError(f"gguf: no GGUF tensor name for {target.canonical!r}")
        targets[names[target.canonical]] = target
    if reader is not None:
        missing = set(targets) - {tensor.name for tensor in reader.tensors}
        if missing:
            raise ExportError(f"gguf: the source GGUF has no tensor {sorted(missing)[0]!r}")
        for tensor in reader.tensors:
            if tensor.name in targets:
                blocks = _quantized_blocks(model, targets[tensor.name], codes)
                writer.add_tensor(tensor.name, blocks, raw_dtype=qtype)
            else:  # untouched by the edit: the source's bytes and type
                writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
        return
    written: set[StorageKey] = set()
    for hf_name, tensor in state.items():
        key = storage_key(tensor)
        if key in written:
            continue  # a tied copy: llama.cpp and transformers reuse token_embd
        written.add(key)
        if hf_name not in names:
            raise ExportError(f"gguf: no GGUF tensor name for {hf_name!r}")
        gguf_name = names[hf_name]
        if gguf_name in targets:
            blocks = _quantized_blocks(model, targets[gguf_name], codes)
            writer.add_tensor(gguf_name, blocks, raw_dtype=qtype)
        elif tensor.dtype == torch.bfloat16:
            array = tensor.detach().to(torch.float32).cpu().numpy()
            blocks = gguf.quants.quantize(array, gguf.GGMLQuantizationType.BF16)
            writer.add_tensor(gguf_name, blocks, raw_dtype=gguf.GGMLQuantizationType.BF16)
        else:
            writer.add_tensor(gguf_name, np.ascontiguousarray(tensor.detach().cpu().numpy()))
