"""Exact ground-truth state of a clip at any frames, for metrics."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from forcing.world.motion import frame_indices, trajectory
from forcing.world.palette import BACKGROUNDS, COLOURS
from forcing.world.spec import ClipSpec


def state_at(
    spec: ClipSpec, frames: Tensor | Sequence[int] | range, height: int = 32, width: int = 32
) -> dict[str, Tensor | list[str]]:
    """Ground-truth state of every shape at the given frame indices (pixel units).

    Returns a dict with
        "frames": [F] int64 frame indices;
        "centres": [F, S, 2] float32 centre (x, y) in pixels (pixel (i, j) has centre (j + .5, i + .5));
        "velocities": [F, S, 2] float32 pixels per frame (x right, y down), used from t to t + 1;
        "sizes": [S] float32 half-extent (radius) in pixels; every shape fits centre +- size;
        "colours": [S, 3] float32 RGB in [-1, 1];  "background": [3] float32 RGB in [-1, 1];
        "kinds": list of S kind names;  "colour_names": list of S colour names.
    Shapes are listed in drawing order (later shapes occlude earlier ones).
    """
    index = frame_indices(frames)
    centres, velocities = trajectory(spec, index, height, width)
    scale = float(min(height, width))
    return {
        "frames": index,
        "centres": centres.to(torch.float32),
        "velocities": velocities.to(torch.float32),
        "sizes": torch.tensor([shape.size * scale for shape in spec.shapes], dtype=torch.float32),
        "colours": torch.tensor([COLOURS[shape.colour] for shape in spec.shapes], dtype=torch.float32).view(
            -1, 3
        ),
        "background": torch.tensor(BACKGROUNDS[spec.background], dtype=torch.float32),
        "kinds": [shape.kind for shape in spec.shapes],
        "colour_names": [shape.colour for shape in spec.shapes],
    }
