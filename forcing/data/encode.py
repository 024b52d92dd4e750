"""Encode the clips of a video folder into latent shards with a frozen codec (the Wan VAE at scale).

Every clip is fitted to the world's size (`forcing.data.clips.fit_clip`: first `num_frames` frames,
resized to cover, centre-cropped), encoded one at a time (a 81 x 480 x 832 clip fills a GPU's
VAE activations), stored in `dtype`. Rank r of W (torchrun's RANK / WORLD_SIZE) writes shards
r, r + W, ... (with `shard_size=1`: clips r, r + W, ...); shards that exist are skipped after a check
that they were made with the same settings, so a rerun resumes; manifest.json is written by the rank
that finds every shard present. Clips that are too short or cannot be decoded are skipped and listed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
from torch import nn

from forcing.data.captions import load_captions
from forcing.data.clips import fit_clip
from forcing.data.latents import finish_manifest, same_settings, shard_config, write_latent_shard
from forcing.data.shards import rank_from_env, rank_shards, shard_name, shard_ranges
from forcing.data.videos import list_clips, read_frames
from forcing.errors import ConfigError
from forcing.ode_pairs import model_fingerprint

log = logging.getLogger(__name__)


def clip_list_sha(names: list[str], prompts: list[str]) -> str:
    """sha256 (16 hex digits) of the clip names and captions: the shard plan's identity."""
    return hashlib.sha256(json.dumps([names, prompts]).encode()).hexdigest()[:16]


def encode_videos(
    videos: str | Path,
    out: str | Path,
    codec: nn.Module,
    *,
    captions: str | Path | None = None,
    num_frames: int = 81,
    height: int = 480,
    width: int = 832,
    shard_size: int = 16,
    dtype: torch.dtype = torch.bfloat16,
    rank: int | None = None,
    world_size: int | None = None,
    device: torch.device | str = "cpu",
    vae_path: str | None = None,
    progress: bool = True,
) -> Path | None:
    """Encode this rank's shards of the clips under `videos` into `out`; returns the manifest path when
    this call finished the folder (every shard present), else None. `codec` has `encode(video
    [B, 3, F, H, W] in [-1, 1]) -> latents` and `latent_shape(F, H, W)`; `captions`: "sidecar"/None
    or a captions file (`forcing.data.captions`). rank / world_size default to torchrun's."""
    from tqdm.auto import tqdm

    env_rank, env_world = rank_from_env()
    rank = env_rank if rank is None else rank
    world_size = env_world if world_size is None else world_size
    root, folder = Path(videos), Path(out)
    if not root.is_dir():
        raise ConfigError(f"video folder {root} does not exist")
    clips = list_clips(root)
    if not clips:
        raise ConfigError(f"video folder {root} holds no clip (video files, frame folders or .pt tensors)")
    names = [c.relative_to(root).as_posix() for c in clips]
    prompts = load_captions(captions, clips, root)
    latent_shape = list(codec.latent_shape(num_frames, height, width))  # checks the size is encodable
    config = {
        "frames": num_frames, "height": height, "width": width, "latent_shape": latent_shape,
        "dtype": str(dtype).removeprefix("torch."), "shard_size": shard_size, "num_videos": len(clips),
        "videos_sha256": clip_list_sha(names, prompts), "vae_sha256": model_fingerprint(codec),
        "vae_path": vae_path, "videos": str(root),
    }  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    ranges = shard_ranges(len(clips), shard_size)
    todo = []
    for i in rank_shards(len(ranges), rank, world_size):
        path = folder / shard_name(i)
        if not path.is_file():
            todo.append(i)
        elif not same_settings(shard_config(path), config):
            raise ConfigError(f"{path} was encoded with other settings or clips: use another --out or delete it")
    codec = codec.to(device)
    total = sum(ranges[i][1] - ranges[i][0] for i in todo)
    with tqdm(total=total, desc=f"encode rank {rank}/{world_size}", position=rank, disable=not progress) as bar:
        for i in todo:
            lo, hi = ranges[i]
            latents, rows, skipped = [], [], []
            for n in range(lo, hi):
                try:
                    clip = fit_clip(read_frames(clips[n], num_frames), num_frames, height, width)
                except Exception as err:  # noqa: BLE001 - a bad clip is skipped, the run goes on
                    log.warning("skipped %s: %s", names[n], err)
                    skipped.append(names[n])
                    bar.update(1)
                    continue
                with torch.no_grad():
                    latents.append(codec.encode(clip[None].to(device))[0].to(dtype).cpu())  # [C, F', H', W']
                rows.append(n)
                bar.update(1)
            stacked = torch.stack(latents) if latents else torch.zeros(0, *latent_shape, dtype=dtype)
            write_latent_shard(folder, i, stacked, rows, [prompts[n] for n in rows], [names[n] for n in rows],
                               config, skipped)  # fmt: skip
    return finish_manifest(folder, len(ranges), config)
