"""The main job's filmstrip: ground truth | base | Self Forcing, at 1x and at 5x the training length.

    python -m experiments.learnability.main_filmstrip RUN_OR_CKPT --out frames.png [--base FOLDER] [--videos 4]

Per validation prompt five rows of `world.num_frames` frames: the ground truth's first frames, the
bidirectional base's sample (its own sampler: `experiment=shapes_base`), the streamed generator's first
frames (1x), then the ground truth and the same stream over the last `world.num_frames` frames of 5x
the training length (a stream of that length, seed 0, with the evaluation's rolling cache of one
training length; its noise differs from a 20x evaluation stream's). The generator is the run's EMA
when it has one.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from callbacks.evaluation import StreamingEvaluation
from datamodules import validation_clips
from experiments.learnability.base_card import FOLDER, base_module
from experiments.learnability.show import grid
from forcing.world import prompt_for, render
from lightning_modules.loading import load_module, resolve_checkpoint


@torch.no_grad()
def main(argv: Sequence[str] | None = None) -> Path:
    """Write the filmstrip; returns its path."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--base", type=Path, default=FOLDER)
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--horizon", type=int, default=5)
    p.add_argument("--scale", type=int, default=4)
    a = p.parse_args(argv)
    module = load_module(resolve_checkpoint(a.checkpoint)).eval()
    w = module.cfg.world
    frames, h, wd = int(w.num_frames), int(w.height), int(w.width)
    clips = validation_clips(module.cfg, a.videos)
    prompts = [prompt_for(c) for c in clips]
    stream, _, _ = StreamingEvaluation(every_n_steps=1, horizons=[a.horizon]).generate(module, prompts)
    sampled, _, _ = StreamingEvaluation(every_n_steps=1, horizons=[1]).generate(base_module(a.base), prompts)
    length = stream.shape[2]
    late = slice(length - frames, length)
    rows = []
    for i, clip in enumerate(clips):
        truth = render(clip, length, h, wd)  # [3, F, H, W]
        rows += [truth[:, :frames], sampled[i], stream[i, :, :frames], truth[:, late], stream[i, :, late]]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    grid(torch.stack(rows), scale=a.scale).save(a.out)
    for prompt in prompts:
        print(prompt)
    return a.out


if __name__ == "__main__":
    main()
