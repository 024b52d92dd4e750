"""A PNG of a probe's samples next to the ground truth (rows: GT, sample; columns: frames).

    python -m experiments.learnability.show runs/probe/a [--videos 4] [--scale 4]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from forcing.world import ClipSpec, render


def grid(videos: torch.Tensor, scale: int = 4, gap: int = 2) -> Image.Image:
    """[R, 3, F, H, W] in [-1, 1] -> one image, a row per video, a column per frame."""
    r, _, f, h, w = videos.shape
    out = np.full((r * (h * scale + gap), f * (w * scale + gap), 3), 255, np.uint8)
    pix = ((videos.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()
    for i in range(r):
        for j in range(f):
            tile = pix[i, j].repeat(scale, 0).repeat(scale, 1)
            y, x = i * (h * scale + gap), j * (w * scale + gap)
            out[y : y + h * scale, x : x + w * scale] = tile
    return Image.fromarray(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--scale", type=int, default=4)
    a = p.parse_args()
    run = Path(a.run)
    args = json.loads((run / "args.json").read_text())
    samples = torch.load(run / "samples.pt")[: a.videos]
    f, h, w = samples.shape[2:]
    specs = [ClipSpec.sample(i, max_shapes=args["max_shapes"], min_shapes=args["min_shapes"]) for i in range(len(samples))]
    gt = torch.stack([render(s, f, h, w) for s in specs])
    rows = torch.stack([v for pair in zip(gt, samples) for v in pair])
    grid(rows, a.scale).save(run / "samples.png")
    print(run / "samples.png")


if __name__ == "__main__":
    main()
