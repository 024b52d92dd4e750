"""A PNG filmstrip of a checkpoint's samples on the first validation prompts, under the ground truth.

    python -m experiments.learnability.filmstrip RUN_OR_CKPT --out frames.png [--videos 4] [--set KEY=VALUE ...]

Rows per prompt: ground truth, then the checkpoint's sample (EMA generator, its own sampler, the
seed the evaluation uses); columns: frames. For looking at what the numbers mean.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from datamodules import validation_clips
from experiments.evaluate import apply_settings
from experiments.learnability.show import grid
from forcing.world import prompt_for, render
from lightning_modules.loading import load_module, resolve_checkpoint


def main(argv: Sequence[str] | None = None) -> Path:
    """Write the filmstrip; returns its path."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="e.g. paradigm.guidance_scale=2")
    a = p.parse_args(argv)
    module = load_module(resolve_checkpoint(a.checkpoint)).eval()
    apply_settings(module.cfg, a.set)
    w = module.cfg.world
    clips = validation_clips(module.cfg, a.videos)
    frames = int(w.num_frames)
    truth = torch.stack([render(c, frames, int(w.height), int(w.width)) for c in clips])
    with torch.no_grad():
        latents = module.sample([prompt_for(c) for c in clips], frames, seed=0)
        videos = module.decode_video(latents).float().cpu()
    rows = torch.stack([v for pair in zip(truth, videos, strict=True) for v in pair])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    grid(rows, scale=a.scale).save(a.out)
    for c in clips:
        print(prompt_for(c))
    return a.out


if __name__ == "__main__":
    main()
