"""Rows of safetensors shards as a dataset: read lazily (memory-mapped, one row at a time), in key order.

Shared by the ODE-pair and latent-shard data modules: each shard holds tensors with one row per item,
an int64 key tensor (clip seed or clip index) and the items' prompts (JSON metadata); items are put in
key order, so the shard layout (and the number of ranks that wrote it) never matters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import safe_open
from torch.utils.data import Dataset

from forcing.errors import ConfigError


class ShardRows(Dataset):
    """`dataset[i]` -> {tensor key: row, "prompt": str, "seed": the item's key}, items in key order.

    `files`: the shards (manifest order); `key`: the int64 tensor that identifies items; `tensors`:
    the keys of the per-item tensors to read; `what`: what the items are called in errors."""

    def __init__(self, folder: str | Path, files: list[str], key: str, tensors: list[str], what: str) -> None:
        self.folder = Path(folder)
        self.files = list(files)
        self.tensors = list(tensors)
        rows: list[tuple[int, int, int, str]] = []  # (key, shard, row, prompt)
        for shard, name in enumerate(self.files):
            path = self.folder / name
            if not path.is_file():
                raise ConfigError(f"{what} shard {path} listed in manifest.json is missing")
            with safe_open(str(path), framework="pt") as f:
                keys = f.get_tensor(key).tolist()
                prompts = json.loads(f.metadata()["prompts"])
            rows.extend((int(k), shard, r, p) for r, (k, p) in enumerate(zip(keys, prompts)))
        rows.sort(key=lambda row: row[0])
        if len({row[0] for row in rows}) != len(rows):
            raise ConfigError(f"{what} in {self.folder} repeat their {key}")
        self.rows = rows
        self._handles: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": {}}  # open files do not travel to workers

    def _handle(self, shard: int) -> Any:
        if shard not in self._handles:
            self._handles[shard] = safe_open(str(self.folder / self.files[shard]), framework="pt")
        return self._handles[shard]

    def __getitem__(self, index: int) -> dict[str, Any]:
        key, shard, row, prompt = self.rows[index]
        f = self._handle(shard)
        item: dict[str, Any] = {k: f.get_slice(k)[row] for k in self.tensors}
        return {**item, "prompt": prompt, "seed": key}

    @property
    def seeds(self) -> list[int]:
        """Item keys in dataset order."""
        return [row[0] for row in self.rows]
