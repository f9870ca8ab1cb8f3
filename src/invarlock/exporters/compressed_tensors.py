"""``compressed-tensors``: the checkpoint format of vLLM and transformers' quantizer.

Written with the library itself: each quantized ``Linear`` is compressed by the library's own
compressor from the guarded weight and the exact float32 scales (and zero points) the edit
used, so the codes it stores are the edit's codes. Symmetric edits are ``pack-quantized``;
asymmetric ones ``naive-quantized`` (transformers cannot load an asymmetric packed zero
point). ``config.json`` gets the library's ``quantization_config``, which ignores every
``Linear`` outside the edit's scope (``lm_head`` included). Tensors are written shard by shard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invarlock.core.structure import StorageKey, storage_key
from invarlock.exporters.base import ExportError, Source, refuse_without_codes

__all__ = ["CompressedTensorsExporter"]

SYMMETRIC_FORMAT = "pack-quantized"
ASYMMETRIC_FORMAT = "naive-quantized"


def _scheme(spec: Any) -> Any:
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme

    args = QuantizationArgs(
        num_bits=spec.bits,
        type="int",
        symmetric=spec.symmetric,
        strategy="channel" if spec.group_size is None else "group",
        group_size=spec.group_size,
    )
    fmt = SYMMETRIC_FORMAT if spec.symmetric else ASYMMETRIC_FORMAT
    return QuantizationScheme(targets=["Linear"], weights=args, format=fmt)


class CompressedTensorsExporter:
    name = "compressed-tensors"
    loader = "transformers.AutoModelForCausalLM.from_pretrained (compressed-tensors, dequantize)"
    dirname = "model-compressed-tensors"

    def refuse_edit(self, codes: Any) -> str | None:
        return refuse_without_codes(codes)

    def refuse_model(self, model: Any, codes: Any, source: Source) -> str | None:
        if not hasattr(model, "config") or not hasattr(model.config, "save_pretrained"):
            return f"{type(model).__name__} is not a transformers model"
        group = codes.spec.group_size
        for target in codes.targets(model):
            if target.module_type != "Linear":
                return (
                    f"{target.module} is a {target.module_type}; compressed-tensors quantizes"
                    " only torch Linear layers (a GPT-2 Conv1D would be left unquantized, or"
                    " load with random weights if swapped for Linear)"
                )
            n_in = target.weight.shape[1]
            if group is not None and group < n_in and n_in % group:
                divisors = [g for g in (128, 64, 32, 16, 8) if n_in % g == 0 and g < group]
                hint = f"; group_size {divisors[0]} fits" if divisors else ""
                return (
                    f"{target.module} has {n_in} input columns, not a multiple of group_size"
                    f" {group}: the format has no partial groups{hint}"
                )
        return None

    def write(self, model: Any, codes: Any, out: Path, source: Source) -> None:
        import torch
        from compressed_tensors.compressors import BaseCompressor, ModelCompressor
        from compressed_tensors.quantization import QuantizationConfig

        from invarlock.exporters.hf import copy_tokenizer
        from invarlock.exporters.shards import ShardWriter

        spec = codes.spec
        scheme = _scheme(spec)
        compressor = BaseCompressor.get_value_from_registry(scheme.format)
        out.mkdir(parents=True)
        shards = ShardWriter(out)
        covered: set[str] = set()
        quantized: set[str] = set()
        for target in codes.targets(model):
            weight = target.weight
            coded = codes.codes(target)
            state = {"weight": weight.detach(), "weight_scale": coded.scale.to(torch.float32)}
            if coded.zero_point is not None:  # ours 0..2^b-1, the library's signed
                shifted = coded.zero_point.to(torch.int16) - 2 ** (spec.bits - 1)
                state["weight_zero_point"] = shifted.to(torch.int8)
            for key, tensor in compressor.compress(state, scheme).items():
                shards.add(f"{target.module}.{key}", tensor)
            covered.update(target.aliases)
            quantized.add(target.module)
        stored: set[StorageKey] = set()
        for name, tensor in model.state_dict().items():
            key = storage_key(tensor)
            if name in covered or key in stored:
                continue  # tied copies are re-tied on load from config.json
            stored.add(key)
            shards.add(name, tensor)
        shards.close()
        model.config.save_pretrained(out)
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(out)
        ignore = sorted(
            name
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name not in quantized
        )
        config = QuantizationConfig(
            config_groups={"group_0": scheme},
            ignore=ignore,
            format=scheme.format,
            quantization_status="compressed",
        )
        ModelCompressor(quantization_config=config).update_config(str(out))
        copy_tokenizer(source, out)

    def load(self, out: Path, model: Any) -> Any:
        import warnings

        from transformers import AutoModelForCausalLM, CompressedTensorsConfig

        try:
            with warnings.catch_warnings():  # "config.json has a quantization_config": we know
                warnings.filterwarnings("ignore", message=".*quantization_config.*")
                return AutoModelForCausalLM.from_pretrained(
                    out,
                    dtype=model.dtype,
                    quantization_config=CompressedTensorsConfig(dequantize=True),
                ).eval()
        except ValueError as error:
            raise ExportError(f"compressed-tensors: loading back failed: {error}") from error
