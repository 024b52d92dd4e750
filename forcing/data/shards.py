"""Shard plumbing shared by the sharded writers (ODE pairs, video latents).

A folder of shards `shard-00000.safetensors, ...` is planned up front: shard i holds items
[i * size, (i + 1) * size) of a fixed list, and rank r of W writes shards r, r + W, ... Each shard is
written to a temporary file and renamed, so a shard either exists whole or not at all; a rerun skips
the shards that exist (resume after an interruption, on any number of ranks). `manifest.json` is
written last, by whichever rank finds every planned shard present (no barrier between ranks).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

MANIFEST = "manifest.json"


def shard_name(index: int) -> str:
    """File name of shard `index`."""
    return f"shard-{index:05d}.safetensors"


def rank_from_env() -> tuple[int, int]:
    """(rank, world size) of a `torchrun` launch (RANK, WORLD_SIZE), (0, 1) without one."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def shard_ranges(num_items: int, shard_size: int) -> list[tuple[int, int]]:
    """[lo, hi) of every shard of `num_items` items in shards of `shard_size`."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    return [(lo, min(num_items, lo + shard_size)) for lo in range(0, num_items, shard_size)]


def rank_shards(num_shards: int, rank: int, world_size: int) -> range:
    """The shards rank `rank` of `world_size` writes: rank, rank + world_size, ..."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, {world_size})")
    return range(rank, num_shards, world_size)


def save_shard(tensors: Mapping[str, Tensor], path: str | Path, metadata: Mapping[str, str]) -> Path:
    """Write a safetensors file atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=dict(metadata))
    os.replace(tmp, path)
    return path


def write_json(path: str | Path, value: Any) -> Path:
    """Write JSON atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def read_header(path: str | Path, rows_of: str) -> tuple[int, dict[str, str]]:
    """(rows of the tensor `rows_of`, metadata) of a safetensors file, without reading its tensors."""
    with safe_open(str(path), framework="pt") as f:
        return int(f.get_slice(rows_of).get_shape()[0]), dict(f.metadata() or {})


def all_present(folder: str | Path, num_shards: int) -> bool:
    """Whether every planned shard of a folder exists."""
    return all((Path(folder) / shard_name(i)).is_file() for i in range(num_shards))


def read_folder_manifest(folder: str | Path, what: str, fmt: str, required: str, command: str) -> dict[str, Any]:
    """The manifest of a finished shard folder of `fmt` with a non-empty `required` entry;
    `ConfigError` naming `what` the folder holds and the `command` that makes it otherwise."""
    from forcing.errors import ConfigError

    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        state = "does not exist" if not folder.exists() else f"has no {MANIFEST} (empty or unfinished)"
        raise ConfigError(f"{what} folder {folder} {state}: make it with `{command}`")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != fmt or not manifest.get(required):
        raise ConfigError(f"{path} is not a {fmt} manifest with {required.replace('num_', '')}: remake it with `{command}`")
    return manifest
