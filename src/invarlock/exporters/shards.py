"""Write a state dict as safetensors shards, one shard in memory at a time.

Shard and index names follow transformers (``model-00001-of-00003.safetensors`` +
``model.safetensors.index.json``; a single shard is ``model.safetensors``), so every loader
that reads a ``save_pretrained`` directory reads these.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

__all__ = ["INDEX_FILE", "ShardWriter", "shard_files"]

INDEX_FILE = "model.safetensors.index.json"

#: Bytes per shard: what transformers' save_pretrained uses by default.
SHARD_BYTES = 5 * 1024**3


class ShardWriter:
    """Collects tensors and flushes a shard whenever the next tensor would overflow it."""

    def __init__(
        self, out: Path, max_bytes: int | None = None, metadata: dict[str, str] | None = None
    ) -> None:
        self.out = out
        self.max_bytes = SHARD_BYTES if max_bytes is None else max_bytes
        self.metadata = {"format": "pt", **(metadata or {})}
        self._pending: dict[str, torch.Tensor] = {}
        self._pending_bytes = 0
        self._shards: list[tuple[str, list[str], int]] = []

    def add(self, name: str, tensor: torch.Tensor) -> None:
        size = tensor.numel() * tensor.element_size()
        if self._pending and self._pending_bytes + size > self.max_bytes:
            self._flush()
        self._pending[name] = tensor.detach().cpu().contiguous()
        self._pending_bytes += size

    def _flush(self) -> None:
        from safetensors.torch import save_file

        temporary = f"shard-{len(self._shards) + 1:05d}.safetensors"
        from invarlock.core.atomic import current_umask

        save_file(self._pending, str(self.out / temporary), metadata=self.metadata)
        (self.out / temporary).chmod(0o666 & ~current_umask())  # safetensors writes 0600
        self._shards.append((temporary, list(self._pending), self._pending_bytes))
        self._pending, self._pending_bytes = {}, 0

    def close(self) -> list[str]:
        """Flush the last shard, give the shards their final names, write the index."""
        if self._pending or not self._shards:
            self._flush()
        count = len(self._shards)
        if count == 1:
            (self.out / self._shards[0][0]).rename(self.out / "model.safetensors")
            return ["model.safetensors"]
        weight_map, names, total = {}, [], 0
        for index, (temporary, tensors, size) in enumerate(self._shards, start=1):
            final = f"model-{index:05d}-of-{count:05d}.safetensors"
            (self.out / temporary).rename(self.out / final)
            weight_map.update(dict.fromkeys(tensors, final))
            names.append(final)
            total += size
        index_file = self.out / INDEX_FILE
        index_file.write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2),
            encoding="utf-8",
        )
        return names


def shard_files(directory: Path) -> list[Path]:
    """The safetensors files of a checkpoint: ``model.safetensors`` or the indexed shards."""
    single = directory / "model.safetensors"
    if single.is_file():
        return [single]
    index = json.loads((directory / INDEX_FILE).read_text(encoding="utf-8"))
    return [directory / name for name in sorted(set(index["weight_map"].values()))]
