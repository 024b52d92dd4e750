"""Command line of the ODE-initialisation pairs (:mod:`forcing.ode_pairs`) on the shapes world.

    python -m lightning_modules.ode_pairs --teacher <weights folder | .ckpt> --out <folder> --num 256
        [--guidance 4.0] [--frames 12 --height 32 --width 32]

The library takes the world's settings as arguments; this command reads them from
``conf/world/shapes.yaml`` (a Lightning checkpoint's own run config overrides them, the flags both).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from forcing.ode_pairs import make_shapes_pairs
from lightning_modules.validation import CONF

__all__ = ["main", "shapes_world_defaults"]


def shapes_world_defaults(conf: Path = CONF) -> dict[str, Any]:
    """conf/world/shapes.yaml as a plain dict."""
    return OmegaConf.to_container(OmegaConf.load(conf / "world" / "shapes.yaml"), resolve=True)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: generate shapes-world ODE pairs from a teacher."""
    parser = argparse.ArgumentParser(
        prog="python -m lightning_modules.ode_pairs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--teacher", required=True, help="teacher weights folder (save_pretrained) or Lightning .ckpt"
    )
    parser.add_argument("--out", required=True, help="output folder (shards + manifest.json)")
    parser.add_argument("--num", type=int, required=True, help="number of pairs (clips)")
    parser.add_argument("--guidance", type=float, default=4.0, help="CFG scale w: v_u + w (v_c - v_u)")
    parser.add_argument(
        "--frames", type=int, default=None, help="latent frames (default: teacher's world, 12)"
    )
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--max-shapes", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="base seed of the pair clips")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    manifest = make_shapes_pairs(
        args.teacher, args.out, args.num, world=shapes_world_defaults(), guidance_scale=args.guidance,
        num_frames=args.frames, height=args.height, width=args.width, max_shapes=args.max_shapes,
        base_seed=args.seed, batch_size=args.batch_size, shard_size=args.shard_size, device=args.device,
    )  # fmt: skip
    print(f"wrote {args.num} ODE pairs: {manifest}")


if __name__ == "__main__":
    main()
