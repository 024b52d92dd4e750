"""Frames of sample / evaluation videos side by side in one PNG, for study READMEs.

    python experiments/filmstrip.py OUT.png VIDEO.mp4 [VIDEO.mp4 ...] --frames 0 11 59 119 239 [--labels A B]

One row per video (an evaluation mp4 shows ground truth | generated), one column per frame index
(indices past a video's end are clamped to its last frame); labels, if given, are drawn on the left.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw


def filmstrip(videos: Sequence[Path], frames: Sequence[int], labels: Sequence[str] | None = None,
              gap: int = 4, label_width: int = 120) -> Image.Image:
    """The image: rows = videos, columns = `frames`, white gaps, optional row labels."""
    rows = []
    for path in videos:
        video = iio.imread(path)  # [T, H, W, 3] uint8
        picks = [video[min(max(i, 0), len(video) - 1)] for i in frames]
        height = picks[0].shape[0]
        sep = np.full((height, gap, 3), 255, np.uint8)
        rows.append(np.concatenate([x for p in picks for x in (p, sep)][:-1], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, gap), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    grid = np.concatenate(rows, axis=0)
    if labels:
        grid = np.concatenate([np.full((grid.shape[0], label_width, 3), 255, np.uint8), grid], axis=1)
    image = Image.fromarray(grid)
    if labels:
        draw = ImageDraw.Draw(image)
        y = 0
        for label, row in zip(labels, rows):
            draw.text((4, y + row.shape[0] // 2 - 6), label, fill=(0, 0, 0))
            y += row.shape[0]
    return image


def main(argv: Sequence[str] | None = None) -> Path:
    """Command line: write the PNG."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("videos", type=Path, nargs="+")
    p.add_argument("--frames", type=int, nargs="+", default=[0, 11, 59, 119, 239])
    p.add_argument("--labels", nargs="+", default=None)
    args = p.parse_args(argv)
    if args.labels and len(args.labels) != len(args.videos):
        p.error(f"{len(args.labels)} labels for {len(args.videos)} videos")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    filmstrip(args.videos, args.frames, args.labels).save(args.out)
    return args.out


if __name__ == "__main__":
    print(main())
