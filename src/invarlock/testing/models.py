"""Tiny, deterministic GPT-2 and LLaMA models with a real tokenizer, for tests and the quickstart.

``build_tiny_model("gpt2", out_dir)`` writes a Hugging Face model directory (``config.json``,
``model.safetensors``, tokenizer files) that loads with ``AutoModelForCausalLM`` and
``AutoTokenizer``. The weights are random (seeded), the structure is realistic: GPT-2 uses
``Conv1D`` projections and learned positions; LLaMA uses grouped-query attention, rotary
positions, RMSNorm and a SwiGLU MLP whose width is not a multiple of 64. The tokenizer is a
byte-level BPE trained on an English essay shipped with the package, so calibration text
tokenizes the way it would with a real model.

``export_gguf(model_dir, out_file)`` writes a tiny LLaMA directory as an unquantized GGUF file
that transformers' ``gguf_file=`` loader reads back to the same logits.

Command line::

    python -m invarlock.testing.models gpt2 models/tiny-gpt2
    python -m invarlock.testing.models llama models/tiny-llama --seed 1 --untied --gguf tiny.gguf
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerFast

Family = Literal["gpt2", "llama"]
FAMILIES: tuple[str, ...] = ("gpt2", "llama")
DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")

#: Target size of the trained BPE vocabulary (special tokens included).
VOCAB_SIZE = 512
#: Longest sequence the tiny models accept.
MAX_POSITIONS = 256
#: Width of every tiny model.
HIDDEN_SIZE = 64
#: Number of transformer blocks.
N_LAYERS = 3
#: Attention heads; the LLaMA model shares each key/value head between two query heads.
N_HEADS = 4
N_KV_HEADS = 2
#: LLaMA MLP width: 2.75 x hidden, deliberately not a multiple of 64 or 128.
LLAMA_INTERMEDIATE_SIZE = 176


@dataclass(frozen=True)
class SpecialTokens:
    """The special tokens a family's tokenizer carries, and whether it prepends BOS."""

    bos: str
    eos: str
    pad: str
    add_bos: bool

    @property
    def all(self) -> list[str]:
        """Distinct special tokens in id order (they get the first ids of the vocabulary)."""
        return list(dict.fromkeys([self.bos, self.eos, self.pad]))


SPECIAL_TOKENS: dict[str, SpecialTokens] = {
    # GPT-2 convention: one end-of-text token serves as BOS and EOS, no BOS is prepended.
    "gpt2": SpecialTokens(bos="<|endoftext|>", eos="<|endoftext|>", pad="<|pad|>", add_bos=False),
    # LLaMA convention: distinct BOS/EOS, BOS prepended to every sequence.
    "llama": SpecialTokens(bos="<s>", eos="</s>", pad="<pad>", add_bos=True),
}


def corpus_text() -> str:
    """The English essay the tokenizer is trained on (also handy as calibration text)."""
    return resources.files("invarlock.testing").joinpath("data", "corpus.txt").read_text("utf-8")


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        choices = ", ".join(FAMILIES)
        raise ValueError(f"unknown tiny-model family {family!r}; choose one of {choices}")


def train_tokenizer(family: Family) -> PreTrainedTokenizerFast:
    """Train the byte-level BPE tokenizer for ``family`` on :func:`corpus_text` (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    _check_family(family)
    specials = SPECIAL_TOKENS[family]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=specials.all,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator([corpus_text()], trainer=trainer)
    if specials.add_bos:
        bos_id = backend.token_to_id(specials.bos)
        backend.post_processor = processors.TemplateProcessing(
            single=f"{specials.bos} $A",
            pair=f"{specials.bos} $A {specials.bos} $B",
            special_tokens=[(specials.bos, bos_id)],
        )
    else:
        backend.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=specials.bos,
        eos_token=specials.eos,
        pad_token=specials.pad,
        model_max_length=MAX_POSITIONS,
        clean_up_tokenization_spaces=False,
    )


def tiny_config(
    family: Family,
    tokenizer: PreTrainedTokenizerFast | None = None,
    *,
    tie_word_embeddings: bool = True,
    **overrides: Any,
) -> PretrainedConfig:
    """The one tiny-model configuration: tests, benchmarks and the quickstart builder use it.

    Sized to ``tokenizer``'s vocabulary and special tokens; without a tokenizer the vocabulary
    is :data:`VOCAB_SIZE` and the token ids are the family's defaults. ``overrides`` are
    config keys in the family's own names (``n_layer=2`` for GPT-2, ``num_hidden_layers=30``
    for LLaMA) for a test or benchmark that needs another size of the same architecture.
    """
    from transformers import GPT2Config, LlamaConfig

    _check_family(family)
    values: dict[str, Any] = {"vocab_size": VOCAB_SIZE, "tie_word_embeddings": tie_word_embeddings}
    if tokenizer is not None:
        values.update(
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    if family == "gpt2":
        values.update(
            n_positions=MAX_POSITIONS, n_embd=HIDDEN_SIZE, n_layer=N_LAYERS, n_head=N_HEADS
        )
        return GPT2Config(**{**values, **overrides})
    values.update(
        hidden_size=HIDDEN_SIZE,
        intermediate_size=LLAMA_INTERMEDIATE_SIZE,
        num_hidden_layers=N_LAYERS,
        num_attention_heads=N_HEADS,
        num_key_value_heads=N_KV_HEADS,
        max_position_embeddings=MAX_POSITIONS,
        rms_norm_eps=1e-5,
    )
    return LlamaConfig(**{**values, **overrides})


def _init_model(config: PretrainedConfig, seed: int) -> PreTrainedModel:
    """Instantiate the model for ``config`` with weights drawn from ``seed``.

    The global RNG state is forked so callers' random streams are left untouched.
    """
    import torch
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    return model.eval()


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{out_dir} is not empty; pass overwrite=True (--force on the command line) "
            "to replace it"
        )
    out_dir.mkdir(parents=True, exist_ok=True)


def build_tiny_model(
    family: Family,
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    tie_word_embeddings: bool = True,
    dtype: str = "float32",
    overwrite: bool = False,
) -> Path:
    """Build a tiny ``family`` model and save it with its tokenizer into ``out_dir``.

    The same ``family``/``seed``/``tie_word_embeddings``/``dtype`` always produce the same bytes.
    ``dtype`` is one of ``float32``, ``float16``, ``bfloat16`` (weights are drawn in float32 and
    cast). Raises ``FileExistsError`` when ``out_dir`` is a non-empty directory, unless
    ``overwrite`` is set. Returns ``out_dir`` as a :class:`~pathlib.Path`.
    """
    import torch

    _check_family(family)
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    out = Path(out_dir)
    _prepare_out_dir(out, overwrite)

    tokenizer = train_tokenizer(family)
    config = tiny_config(family, tokenizer, tie_word_embeddings=tie_word_embeddings)
    model = _init_model(config, seed)
    model.to(getattr(torch, dtype))
    model.save_pretrained(out)  # safetensors
    tokenizer.save_pretrained(out)
    return out


# --------------------------------------------------------------------------- GGUF export


def export_gguf(model_dir: str | os.PathLike[str], out_file: str | os.PathLike[str]) -> Path:
    """Write the LLaMA model saved in ``model_dir`` as an unquantized (F32) GGUF file.

    Meant for the tiny models of :func:`build_tiny_model`: the tokenizer must be byte-level
    BPE and the architecture ``llama`` without attention/MLP biases. The file is written to a
    temporary name and renamed into place. Needs the ``gguf`` package.
    """
    import gguf
    import torch
    from safetensors.torch import load_file

    from invarlock.exporters.gguf_llama import (
        llamacpp_rope_order,
        tokenizer_metadata,
        write_llama_metadata,
    )

    src, out = Path(model_dir), Path(out_file)
    with (src / "config.json").open(encoding="utf-8") as handle:
        config = json.load(handle)
    model_type = config.get("model_type")
    if model_type != "llama":
        raise ValueError(f"{src}: export_gguf handles llama models, not {model_type!r}")
    if config.get("attention_bias") or config.get("mlp_bias"):
        raise ValueError(f"{src}: attention/MLP biases are not supported by export_gguf")
    weights_file = src / "model.safetensors"
    if not weights_file.is_file():
        raise FileNotFoundError(f"{weights_file} not found (export_gguf needs a single file)")

    state = load_file(weights_file)
    n_layers = config["num_hidden_layers"]
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    heads = {"q_proj": config["num_attention_heads"], "k_proj": config["num_key_value_heads"]}

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    writer = gguf.GGUFWriter(tmp_name, "llama")
    try:
        write_llama_metadata(
            writer, config, tokenizer_metadata(src), name="invarlock-tiny-llama", file_type=0
        )
        for hf_name in sorted(state):
            base, _, suffix = hf_name.rpartition(".")
            gguf_base = name_map.get_name(base)
            if gguf_base is None:
                raise ValueError(f"{weights_file}: no GGUF name for tensor {hf_name!r}")
            array = state[hf_name].to(torch.float32).numpy()
            projection = base.rsplit(".", 1)[-1]
            if projection in heads:
                array = llamacpp_rope_order(array, heads[projection])
            writer.add_tensor(f"{gguf_base}.{suffix}", array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp_name, out)
    except BaseException:
        writer.close()
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return out


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m invarlock.testing.models",
        description="Build a tiny, deterministic GPT-2 or LLaMA model with a trained tokenizer.",
    )
    parser.add_argument("family", choices=FAMILIES, help="model family")
    parser.add_argument("out_dir", type=Path, help="directory to write the model into")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default: 0)")
    parser.add_argument("--untied", action="store_true", help="separate LM head and embedding")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="weight dtype")
    parser.add_argument("--force", action="store_true", help="overwrite a non-empty out_dir")
    parser.add_argument(
        "--gguf", type=Path, metavar="FILE", help="also export an F32 GGUF file (llama only)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m invarlock.testing.models``; prints the model directory."""
    args = _parser().parse_args(argv)
    if args.gguf is not None and args.family != "llama":
        _parser().error("--gguf is only supported for the llama family")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # keep stderr to our one-line summary
    try:
        path = build_tiny_model(
            args.family,
            args.out_dir,
            seed=args.seed,
            tie_word_embeddings=not args.untied,
            dtype=args.dtype,
            overwrite=args.force,
        )
        if args.gguf is not None:
            gguf_path = export_gguf(path, args.gguf)
            print(f"wrote {gguf_path}", file=sys.stderr)
    except (FileExistsError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tying = "untied" if args.untied else "tied"
    print(f"built tiny {args.family} ({args.dtype}, seed {args.seed}, {tying})", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
