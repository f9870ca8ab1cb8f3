"""Dequantize a GGUF file into a Hugging Face directory (config, safetensors, tokenizer).

transformers reads the GGUF file and unpacks its blocks into dense float32 weights; this module
only drives it, reports the per-tensor progress on invarlock's display instead of transformers'
bar, and writes the result with ``save_pretrained``. Nothing is fetched from the network.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from invarlock.core.errors import ModelLoadError
from invarlock.core.structure import dtype_name
from invarlock.models.progress import ConversionDisplay
from invarlock.models.quiet import quiet_transformers

#: The transformers module whose ``tqdm`` walks the GGUF tensors while dequantizing them.
_GGUF_LOADER_MODULE = "transformers.modeling_gguf_pytorch_utils"


def check_gguf_available() -> None:
    """Raise :class:`ModelLoadError` unless the ``gguf`` package is installed."""
    if importlib.util.find_spec("gguf") is None:
        raise ModelLoadError("loading a .gguf file needs the 'gguf' package: pip install gguf")


def dequantize_config() -> dict[str, Any]:
    """Ask transformers to unpack GGUF blocks into dense weights, where it can keep them packed."""
    try:
        from transformers import GgufConfig
    except ImportError:  # older transformers always dequantizes GGUF files
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def gguf_has_tokenizer(gguf_path: str | Path) -> bool:
    """Whether the GGUF file's metadata describes a tokenizer."""
    check_gguf_available()
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(gguf_path))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"could not read GGUF file {gguf_path}: {exc}") from exc
    return "tokenizer.ggml.tokens" in reader.fields


def gguf_tokenizer(gguf_path: str | Path, call: dict[str, Any]) -> Any:
    """The tokenizer described by a GGUF file's metadata, and nothing else.

    transformers prefers a ``tokenizer.json`` next to the file over the file's own metadata, so
    a GGUF dropped into another model's directory would get that model's tokenizer; resolving
    it from an empty directory leaves the GGUF as the only source. ``call`` holds the other
    ``from_pretrained`` keywords (``gguf_file`` among them).
    """
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="invarlock-gguf-") as empty:
        tokenizer = AutoTokenizer.from_pretrained(empty, **call)
    tokenizer.name_or_path = str(gguf_path)
    return tokenizer


@contextmanager
def _tensor_progress(display: ConversionDisplay) -> Iterator[None]:
    """Count the tensors transformers dequantizes on ``display`` (and hide its own bar)."""
    import importlib

    loader = importlib.import_module(_GGUF_LOADER_MODULE)
    original = getattr(loader, "tqdm", None)
    if original is None:  # another transformers layout: the step stays a spinner
        yield
        return

    def counted(items: Iterable[Any], *args: Any, **kwargs: Any) -> Iterator[Any]:
        items = list(items)
        display.step("dequantizing tensors", total=len(items))
        for item in items:
            yield item
            display.advance()

    loader.tqdm = counted
    try:
        yield
    finally:
        loader.tqdm = original


def convert_gguf(gguf_path: Path, out_dir: Path, display: ConversionDisplay) -> dict[str, Any]:
    """Write ``gguf_path`` as a Hugging Face model directory ``out_dir`` (which must exist).

    Returns facts for the cache manifest: architecture, parameter and tensor counts, dtype,
    whether a tokenizer was written. Any loader failure is one :class:`ModelLoadError`.
    """
    check_gguf_available()
    try:
        with quiet_transformers():
            from transformers import AutoModelForCausalLM

            display.step("reading GGUF metadata")
            with _tensor_progress(display):
                model = AutoModelForCausalLM.from_pretrained(
                    str(gguf_path.parent),
                    gguf_file=str(gguf_path),
                    local_files_only=True,
                    trust_remote_code=False,
                    **dequantize_config(),
                )
            display.step("writing safetensors")
            model.config.name_or_path = str(gguf_path)
            model.save_pretrained(out_dir, safe_serialization=True)
            has_tokenizer = gguf_has_tokenizer(gguf_path)
            if has_tokenizer:
                display.step("converting the tokenizer")
                call = {"gguf_file": str(gguf_path), "local_files_only": True}
                gguf_tokenizer(gguf_path, call).save_pretrained(out_dir)
    except ModelLoadError:
        raise
    except Exception as exc:  # one readable error for any loader failure; cause is chained
        raise ModelLoadError(
            f"could not convert GGUF file {gguf_path}: {type(exc).__name__}: {exc}"
        ) from exc
    state = model.state_dict()
    return {
        "architecture": (model.config.architectures or [type(model).__name__])[0],
        "model_type": model.config.model_type,
        "parameters": sum(p.numel() for p in model.parameters()),
        "tensors": len(state),
        "dtype": dtype_name(next(model.parameters()).dtype),
        "tokenizer": has_tokenizer,
    }
