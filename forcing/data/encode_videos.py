"""Encode a folder of videos into Wan VAE latent shards (the `world.data=latents` data of TF / DF).

    python -m forcing.data.encode_videos --videos <folder> --vae <Wan VAE folder or WAN_ROOT> --out <folder>
        [--captions sidecar | <captions file>] [--frames 81 --height 480 --width 832] [--shard-size 16]

Clips: video files (mp4, ...), folders of frames, or .pt tensors; captions: `<clip>.txt` beside each
clip (sidecar, default), a .json {clip: caption} or `clip<TAB>caption` lines. Under `torchrun
--nproc_per_node W` rank r encodes shards r, r + W, ...; rerunning resumes (existing shards are
skipped); the folder is finished when it has manifest.json. Library: `forcing.data.encode`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import torch

from forcing.data.encode import encode_videos
from forcing.encoders import build_codec
from forcing.encoders._folders import resolve_dtype


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: encode this rank's shards, print the manifest when this rank finished the folder."""
    parser = argparse.ArgumentParser(prog="python -m forcing.data.encode_videos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", required=True, help="folder of clips (searched recursively)")
    parser.add_argument("--captions", default="sidecar", help="sidecar (<clip>.txt) or a captions file")
    parser.add_argument("--vae", required=True, help="diffusers AutoencoderKLWan folder (or a Wan2.1 root with vae/)")
    parser.add_argument("--out", required=True, help="output folder (shards + manifest.json)")
    parser.add_argument("--frames", type=int, default=81, help="pixel frames per clip (1 + 4k; 81 -> 21 latent)")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--shard-size", type=int, default=16, help="clips per shard")
    parser.add_argument("--dtype", default="bfloat16", help="storage dtype of the latents")
    parser.add_argument("--vae-dtype", default="float32", help="compute dtype of the VAE")
    cuda = torch.cuda.is_available()
    parser.add_argument("--device", default=f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if cuda else "cpu")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    codec = build_codec(kind="wan_vae", path=args.vae, dtype=args.vae_dtype)
    manifest = encode_videos(
        args.videos, args.out, codec, captions=args.captions, num_frames=args.frames, height=args.height,
        width=args.width, shard_size=args.shard_size, dtype=resolve_dtype(args.dtype), device=args.device,
        vae_path=args.vae, progress=not args.no_progress,
    )  # fmt: skip
    print(f"finished: {manifest}" if manifest else f"this rank's shards are in {args.out} (other ranks still running)")


if __name__ == "__main__":
    main()
