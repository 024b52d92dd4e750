"""Command line of the ODE-initialisation pairs (:mod:`forcing.ode_pairs`).

Shapes world (clips rendered from seeds, their prompts from the grammar):

    python -m lightning_modules.ode_pairs --teacher <weights folder | .ckpt | DCP directory> --out <folder>
        --num 256 [--guidance 4.0] [--frames 12 --height 32 --width 32]

Any world from a prompt list (one prompt a line; pair i takes prompt i mod N), e.g. Wan2.1 on 8 GPUs:

    WAN_ROOT=<diffusers Wan2.1 folder> torchrun --nproc_per_node 8 -m lightning_modules.ode_pairs \\
        --world wan --prompts prompts.txt --out <folder> [--teacher <folder, default WAN_ROOT/transformer>]
        [--num N] [--embeddings <file of forcing.encoders.precomputed_text>] [--dtype bfloat16]
        [--teacher-dtype bfloat16]

Rank r of W (torchrun's RANK / WORLD_SIZE, or --rank / --world-size) makes shards r, r + W, ...;
rerunning resumes (existing shards are skipped); the rank that finds every shard present writes
manifest.json. `--teacher-dtype` is the teacher's compute dtype (fp32 by default; bf16 halves its memory),
`--dtype` the storage dtype of the pairs; both are recorded, and a resume with other ones is refused.
The library takes the world's settings as arguments; this command reads them from
``conf/world/<world>.yaml`` (a Lightning checkpoint's own run config overrides them, the flags both).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from forcing.data.prompts import read_prompts
from forcing.encoders import build_text_encoder
from forcing.encoders._folders import resolve_dtype
from forcing.errors import ConfigError
from forcing.ode_pairs import make_prompt_pairs, make_shapes_pairs
from lightning_modules.validation import CODEC_STRIDES, CONF

__all__ = ["main", "shapes_world_defaults", "world_defaults"]


def world_defaults(name: str = "shapes", root: str | None = None, conf: Path = CONF) -> dict[str, Any]:
    """conf/world/<name>.yaml as a plain dict (`root`: the weights folder of a world with one, else
    WAN_ROOT); `ConfigError` when the world needs a root and has none."""
    path = conf / "world" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"--world {name}: no {path}")
    cfg = OmegaConf.create({"world": OmegaConf.load(path)})  # its values refer to ${world.<key>}
    if root is not None:
        cfg.world.root = root
    world = OmegaConf.to_container(cfg, resolve=True)["world"]
    if "???" in str(world.get("root", "")):
        raise ConfigError(f"--world {name} needs the environment variable WAN_ROOT or --root <diffusers Wan2.1 folder>")
    return world


def shapes_world_defaults(conf: Path = CONF) -> dict[str, Any]:
    """conf/world/shapes.yaml as a plain dict."""
    return world_defaults("shapes", conf=conf)


def _prompt_pairs(args: argparse.Namespace) -> Path | None:
    """The prompt-list maker with the world's text encoder (or pre-computed embeddings) and sizes."""
    world = world_defaults(args.world, args.root)
    teacher = args.teacher or (f"{world['root']}/transformer" if world.get("root") else None)
    if teacher is None:
        raise ConfigError(f"--world {args.world} has no weights folder: pass --teacher")
    if args.embeddings:
        encoder = build_text_encoder(kind="precomputed", path=args.embeddings)
    else:
        encoder = build_text_encoder(world["text_encoder"]).to(args.device)
    codec = world["codec"]
    stride = int(codec.get("spatial_stride") or CODEC_STRIDES[str(codec["kind"])])
    frames, height, width = args.frames or world["num_frames"], args.height or world["height"], args.width or world["width"]
    if height % stride or width % stride:
        raise ConfigError(f"{height}x{width} pixels do not divide by the codec's stride {stride}")
    return make_prompt_pairs(
        teacher, args.out, read_prompts(args.prompts), text_encoder=encoder,
        latent_size=(frames, height // stride, width // stride), num=args.num, guidance_scale=args.guidance,
        base_seed=args.seed, batch_size=args.batch_size, shard_size=args.shard_size, dtype=resolve_dtype(args.dtype),
        teacher_dtype=resolve_dtype(args.teacher_dtype), rank=args.rank, world_size=args.world_size,
        device=args.device, world=args.world, prompts_file=str(args.prompts), progress=not args.no_progress,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: generate ODE pairs from a teacher (shapes clips, or a prompt list)."""
    parser = argparse.ArgumentParser(
        prog="python -m lightning_modules.ode_pairs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--teacher", default=None, help="teacher weights folder (save_pretrained), Lightning .ckpt or DCP "
        "checkpoint directory (--world wan: default WAN_ROOT/transformer)",
    )  # fmt: skip
    parser.add_argument("--out", required=True, help="output folder (shards + manifest.json)")
    parser.add_argument("--num", type=int, default=None, help="number of pairs (--prompts: default one per prompt)")
    parser.add_argument("--guidance", type=float, default=4.0, help="CFG scale w: v_u + w (v_c - v_u)")
    parser.add_argument(
        "--frames", type=int, default=None, help="latent frames (default: teacher's world, 12)"
    )
    parser.add_argument("--height", type=int, default=None, help="pixels (default: the world's)")
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--max-shapes", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="base seed of the pair clips")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--teacher-dtype", default="float32", choices=("float32", "bfloat16"),
                        help="compute dtype of the teacher (the pairs are stored in --dtype)")  # fmt: skip
    cuda = torch.cuda.is_available()
    parser.add_argument("--device", default=f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if cuda else "cpu")
    prompts = parser.add_argument_group("prompt lists (any world)")
    prompts.add_argument("--prompts", default=None, help="text file, one prompt per line")
    prompts.add_argument("--world", default="shapes", choices=("shapes", "wan"),
                         help="conf/world/<world>.yaml: text encoder, codec and sizes")
    prompts.add_argument("--root", default=None, help="the world's weights folder (default: WAN_ROOT)")
    prompts.add_argument("--embeddings", default=None, help="pre-computed text embeddings (precomputed_text)")
    prompts.add_argument("--dtype", default=None, help="storage dtype of the pairs (default float32; bfloat16)")
    prompts.add_argument("--rank", type=int, default=None, help="this process's rank (default: RANK)")
    prompts.add_argument("--world-size", type=int, default=None, help="number of ranks (default: WORLD_SIZE)")
    prompts.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.prompts:
        manifest = _prompt_pairs(args)
        print(f"wrote ODE pairs: {manifest}" if manifest else f"this rank's ODE pair shards are in {args.out}")
        return
    if args.world != "shapes" or args.teacher is None or args.num is None:
        parser.error("without --prompts: the shapes world, and --teacher and --num are required")
    manifest = make_shapes_pairs(
        args.teacher, args.out, args.num, world=shapes_world_defaults(), guidance_scale=args.guidance,
        num_frames=args.frames, height=args.height, width=args.width, max_shapes=args.max_shapes,
        base_seed=args.seed, batch_size=args.batch_size, shard_size=args.shard_size, device=args.device,
        teacher_dtype=resolve_dtype(args.teacher_dtype),
    )  # fmt: skip
    print(f"wrote {args.num} ODE pairs: {manifest}")


if __name__ == "__main__":
    main()
