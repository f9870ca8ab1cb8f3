"""``hf_causal``: load Hugging Face causal language models from a directory, a GGUF file or the Hub.

Sources (see :func:`~invarlock.adapters.hf_loading.resolve_source`):

* a local directory with ``config.json`` and safetensors weights (preferred) or a pickled
  ``pytorch_model.bin``, which is only ever read with ``torch.load(weights_only=True)``;
* a local ``.gguf`` file, or a directory plus ``gguf_file=NAME``, or an embedded model's name
  (``smollm2-135m``): dequantized to dense float weights (RTN needs dense weights) once, into
  the model cache (:mod:`invarlock.models.cache`), and loaded from there;
* a Hub id, only when ``INVARLOCK_ALLOW_NETWORK=1``; otherwise loading fails at once.

Without ``INVARLOCK_ALLOW_NETWORK=1`` transformers is always called with
``local_files_only=True``, so it never reaches for the network either.

The loaded model is in eval mode with ``requires_grad`` off on every parameter: invarlock only
runs forward passes, and autograd bookkeeping would cost memory. Guards that need gradients
can switch them back on for the parameters they study.

This module imports neither torch nor transformers at import time (``invarlock plugins`` lists
it); both are imported inside the methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from invarlock.adapters import hf_loading as loading
from invarlock.adapters._hf_describe import describe_model
from invarlock.core.api import ModelAdapter
from invarlock.core.errors import ConfigError, ModelLoadError
from invarlock.models.cache import CachedModel, cached_gguf
from invarlock.models.convert import check_gguf_available, dequantize_config
from invarlock.models.quiet import quiet_transformers


def _transformers_version() -> tuple[int, int]:
    import transformers

    major, minor = transformers.__version__.split(".")[:2]
    return int(major), int(minor)


def _supports_weights_only() -> bool:
    """Whether ``from_pretrained`` takes ``weights_only`` (older versions rely on torch's default,
    which is ``weights_only=True`` from torch 2.6, the minimum for ``.bin`` files here)."""
    import inspect

    from transformers import PreTrainedModel

    return "weights_only" in inspect.signature(PreTrainedModel.from_pretrained).parameters


def _from_pretrained_kwargs(
    source: loading.ModelSource, options: dict[str, Any], dtype: Any
) -> dict[str, Any]:
    """Keyword arguments for ``AutoModelForCausalLM.from_pretrained`` (validated already)."""
    dtype_key = "dtype" if _transformers_version() >= (4, 56) else "torch_dtype"
    kwargs: dict[str, Any] = {
        dtype_key: dtype,
        "trust_remote_code": bool(options.get("trust_remote_code", False)),
        "local_files_only": bool(options.get("local_files_only", False))
        or not loading.network_allowed(),
    }
    if _supports_weights_only():
        kwargs["weights_only"] = True  # never unpickle code from a .bin checkpoint
    if options.get("revision") is not None:
        kwargs["revision"] = options["revision"]
    if options.get("device_map") is not None:
        kwargs["device_map"] = options["device_map"]
    if source.gguf_file is not None:
        kwargs["gguf_file"] = source.gguf_file
        kwargs.update(dequantize_config())
    return kwargs


class HF_Causal_Adapter(ModelAdapter):
    """Hugging Face ``AutoModelForCausalLM`` models: local directories, GGUF files, Hub ids.

    The ``load_model`` options are the YAML ``model:`` keys besides ``id``, ``adapter`` and
    ``device`` (see its ``Args:``); any other option is a :class:`ConfigError`.
    """

    name: ClassVar[str] = "hf_causal"
    backend: ClassVar[str | None] = "transformers"
    requires: ClassVar[tuple[str, ...]] = ("torch", "transformers")

    def __init__(self) -> None:
        #: Where the last loaded model came from, for ``LoadedModel.info`` (GGUF sources:
        #: ``gguf_path``, ``gguf_sha256``, ``cache_dir``, ``converted``, ``embedded``).
        self.load_info: dict[str, Any] = {}

    def can_load(self, model_id: str) -> bool:
        """A local model directory or ``.gguf`` file; a Hub id only when downloads are allowed."""
        try:
            source = loading.resolve_source(model_id)
        except ModelLoadError:
            return False
        return source.is_local or loading.network_allowed()

    def check(self, model_id: str, **options: Any) -> None:
        """Unknown options and a missing local path or GGUF file fail before the load."""
        accepted = load_option_names()
        loading.check_options(
            {k: v for k, v in options.items() if k not in accepted}, self.name, accepted
        )
        loading.resolve_source(model_id, options.get("gguf_file"))

    def load_model(
        self,
        model_id: str,
        device: str = "auto",
        dtype: str | None = "auto",
        device_map: str | dict[str, Any] | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
        gguf_file: str | None = None,
        local_files_only: bool = False,
        **unknown: Any,
    ) -> Any:
        """Load ``model_id`` as an ``AutoModelForCausalLM`` on ``device``.

        Args:
            dtype: ``auto`` (the checkpoint's dtype; also ``null``), ``float32``, ``float16``
                or ``bfloat16`` (aliases fp32, fp16, half, bf16).
            device_map: Handed to transformers/accelerate for models larger than one device;
                the model is then not moved, and ``device`` must stay ``auto``.
            revision: Branch, tag or commit of a Hub id (Hub ids only).
            trust_remote_code: Run the model repository's own Python code (off by default).
            gguf_file: A ``.gguf`` file in the model directory or Hub repo.
            local_files_only: Never download, even when ``INVARLOCK_ALLOW_NETWORK=1``.
        """
        loading.check_options(unknown, self.name, load_option_names())
        options: dict[str, Any] = {
            "dtype": dtype,
            "device_map": device_map,
            "revision": revision,
            "trust_remote_code": trust_remote_code,
            "gguf_file": gguf_file,
            "local_files_only": local_files_only,
        }
        source = loading.resolve_source(model_id, gguf_file)
        loading.require_network(source)
        if source.is_local and revision is not None:
            raise ConfigError(f"revision={revision!r} applies to Hub ids, not {model_id}")
        if source.kind == "hf_dir":
            weights = loading.find_weights(Path(source.location))
            if not any(w.endswith((".safetensors", ".safetensors.index.json")) for w in weights):
                loading.check_safe_bin_loading(Path(source.location))
        if source.gguf_file is not None:
            check_gguf_available()
        if device_map is not None and device != "auto":
            raise ConfigError(
                f"pass either device ({device!r}) or device_map ({device_map!r}), not both"
            )
        target = None if device_map is not None else loading.resolve_device(device)
        resolved_dtype = loading.resolve_dtype(dtype)
        if source.kind == "gguf":
            cached = self._cached(source)
            load_from = loading.ModelSource("hf_dir", str(cached.path))
            call = _from_pretrained_kwargs(load_from, options, resolved_dtype)
            model = self._from_pretrained(load_from, call, from_cache=True)
            model.config.name_or_path = source.gguf_file  # the file, not the cache directory
        else:
            model = self._from_pretrained(
                source, _from_pretrained_kwargs(source, options, resolved_dtype)
            )
        if target is not None:
            model.to(target)
        model.eval()
        model.requires_grad_(False)
        return model

    def _cached(self, source: loading.ModelSource, record: bool = True) -> CachedModel:
        """The cache entry of a local GGUF source (converted on first use); ``record`` notes
        it in :attr:`load_info` (``gguf_path``, ``gguf_sha256``, ``cache_dir``, ``converted``)."""
        cached = cached_gguf(Path(source.gguf_file or ""), source.embedded)
        if not record:
            return cached
        self.load_info = {
            "gguf_path": source.gguf_file,
            "gguf_sha256": cached.sha256,
            "cache_dir": str(cached.path),
            "converted": cached.converted,
        }
        if source.embedded is not None:
            self.load_info["embedded"] = source.embedded
        return cached

    @staticmethod
    def _from_pretrained(
        source: loading.ModelSource, kwargs: dict[str, Any], from_cache: bool = False
    ) -> Any:
        """``from_pretrained`` without transformers' progress bars (nor, for invarlock's own
        cache, its log warnings); any failure is one :class:`ModelLoadError`."""
        from transformers import AutoModelForCausalLM

        try:
            with quiet_transformers(keep_warnings=not from_cache):
                return AutoModelForCausalLM.from_pretrained(source.location, **kwargs)
        except Exception as exc:  # one readable error for any loader failure; cause is chained
            where = source.gguf_file or source.location
            raise ModelLoadError(f"could not load model from {where}: {_cause(exc)}") from exc

    def load_tokenizer(self, model_id: str, **kwargs: Any) -> Any | None:
        """The tokenizer stored with the model, or ``None`` when the source carries none.

        Looks only where the weights are: the model directory, the GGUF file's metadata, or
        (downloads allowed) the same Hub repo. Never guesses a tokenizer from the model's
        name. Accepts the ``load_model`` options (only ``revision``, ``trust_remote_code``,
        ``gguf_file`` and ``local_files_only`` matter). Broken tokenizer files raise
        :class:`ModelLoadError`.
        """
        loading.check_options(kwargs, self.name, load_option_names())
        source = loading.resolve_source(model_id, kwargs.get("gguf_file"))
        loading.require_network(source)
        if source.kind == "gguf":  # the tokenizer converted from the file's metadata, if any
            location = self._cached(source, record=False).path
            call: dict[str, Any] = {"local_files_only": True}
        else:
            location = Path(source.location)
            options = _from_pretrained_kwargs(source, kwargs, "auto")
            keep = ("trust_remote_code", "local_files_only", "revision", "gguf_file")
            call = {key: options[key] for key in keep if key in options}
        if source.kind != "hub" and not loading.has_tokenizer_files(location):
            return None
        try:
            from transformers import AutoTokenizer

            with quiet_transformers(keep_warnings=source.kind != "gguf"):
                tokenizer = AutoTokenizer.from_pretrained(
                    source.location if source.kind == "hub" else str(location), **call
                )
        except Exception as exc:  # one readable error for any loader failure; cause is chained
            where = source.gguf_file or source.location
            raise ModelLoadError(
                f"could not load the tokenizer from {where}: {type(exc).__name__}: {exc}"
            ) from exc
        if source.kind == "gguf":
            tokenizer.name_or_path = source.gguf_file
        return tokenizer

    def describe(self, model: Any) -> dict[str, Any]:
        """Shape, size, dtype, device, tied weights and block container of ``model``."""
        return describe_model(model)


def load_option_names() -> tuple[str, ...]:
    """The ``load_model`` options, as its signature declares them."""
    from invarlock.core.options import declared_options

    skip = ("model_id", "device")
    return tuple(o.name for o in declared_options(HF_Causal_Adapter.load_model, skip=skip))


def _cause(exc: BaseException) -> str:
    """One readable line for a loader failure (an unsafe pickle gets a short explanation)."""
    import pickle
    import re

    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(exc)).strip()
    if isinstance(exc, pickle.UnpicklingError):
        found = re.search(r"GLOBAL (\S+)", text)
        what = f" ({found.group(1)})" if found else ""
        return (
            f"the checkpoint is a pickle holding more than tensors{what}; it was not "
            "unpickled, since that could run code. Convert it to safetensors from a trusted copy"
        )
    return f"{type(exc).__name__}: {text}"
