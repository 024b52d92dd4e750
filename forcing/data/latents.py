"""Latent shards of a video folder (`python -m forcing.data.encode_videos`): the format, its writer and reader.

Layout of a latents folder::

    shard-00000.safetensors   latents [n, C, F, H, W] (bf16 by default), index int64 [n] (the clip's
                              position in the folder's sorted clip list); metadata: format, prompts,
                              names (clip paths) and skipped (clips too short or unreadable) as JSON,
                              config (JSON: the encoding settings)
    manifest.json             format, config, num_clips, shards [{file, num}], skipped; written last,
                              when every planned shard exists, so a folder without it is unfinished

Shard i holds clips [i * shard_size, (i + 1) * shard_size) of the sorted list (`forcing.data.shards`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from forcing.data.shards import (
    MANIFEST,
    all_present,
    read_folder_manifest,
    read_header,
    save_shard,
    shard_name,
    write_json,
)

FORMAT = "forcing.latents/1"
#: The command that makes a latents folder (quoted in error messages).
COMMAND = "python -m forcing.data.encode_videos --videos <folder> --vae <Wan VAE folder> --out <folder>"
#: Config keys that name where things were, not what was made: not compared on resume.
LOCATIONS = ("vae_path", "videos")


def same_settings(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two encoding configs made the same latents (locations aside)."""
    return {k: v for k, v in a.items() if k not in LOCATIONS} == {k: v for k, v in b.items() if k not in LOCATIONS}


def write_latent_shard(
    folder: str | Path,
    index: int,
    latents: Tensor,
    rows: list[int],
    prompts: Sequence[str],
    names: Sequence[str],
    config: dict[str, Any],
    skipped: Sequence[str] = (),
) -> Path:
    """Write shard `index` (atomically): latents [n, C, F, H, W] of the clips at positions `rows`."""
    metadata = {
        "format": FORMAT,
        "prompts": json.dumps(list(prompts)),
        "names": json.dumps(list(names)),
        "skipped": json.dumps(list(skipped)),
        "config": json.dumps(config),
    }
    tensors = {"latents": latents, "index": torch.tensor(rows, dtype=torch.int64)}
    return save_shard(tensors, Path(folder) / shard_name(index), metadata)


def shard_config(path: str | Path) -> dict[str, Any]:
    """The encoding config stored in a shard."""
    return json.loads(read_header(path, "index")[1]["config"])


def finish_manifest(folder: str | Path, num_shards: int, config: dict[str, Any]) -> Path | None:
    """Write manifest.json when all `num_shards` shards exist (else None): the shards' row counts and
    skipped clips, read from their headers."""
    folder = Path(folder)
    if not all_present(folder, num_shards):
        return None
    shards, skipped = [], []
    for i in range(num_shards):
        num, meta = read_header(folder / shard_name(i), "index")
        shards.append({"file": shard_name(i), "num": num})
        skipped.extend(json.loads(meta.get("skipped", "[]")))
    manifest = {"format": FORMAT, "config": config, "num_clips": sum(s["num"] for s in shards),
                "shards": shards, "skipped": skipped}  # fmt: skip
    return write_json(folder / MANIFEST, manifest)


def read_latent_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a finished latents folder; `ConfigError` naming the command when there is none."""
    return read_folder_manifest(folder, "latents", FORMAT, "num_clips", COMMAND)
