"""Shape-kind classification of a detected object by template matching.

For every kind the template is the world's own anti-aliased shape (`forcing.world.signed_distance`)
with the object's soft area and centroid, so a ground-truth render matches its true kind almost
exactly; the kind with the highest soft IoU wins.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from forcing.world import KINDS, signed_distance

#: Area of each kind in units of r^2 (r = half-extent): circle pi, square 4, triangle and diamond 2.
AREA_PER_R2: dict[str, float] = {"circle": math.pi, "square": 4.0, "triangle": 2.0, "diamond": 2.0}

#: Centroid minus centre in units of r (the triangle points up, so its centroid sits r/3 below).
CENTROID_OFFSET: dict[str, float] = {"circle": 0.0, "square": 0.0, "triangle": 1.0 / 3.0, "diamond": 0.0}


def template(kind: str, size: int, centroid: Tensor, area: Tensor) -> Tensor:
    """Anti-aliased coverage `[N, size, size]` of `kind` shapes with given centroids `[N, 2]` (x, y) and areas `[N]`."""
    radius = (area.clamp_min(1e-6) / AREA_PER_R2[kind]).sqrt().view(-1, 1, 1)
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    cx = centroid[:, 0].view(-1, 1, 1)
    cy = centroid[:, 1].view(-1, 1, 1) - CENTROID_OFFSET[kind] * radius
    dx = grid.view(1, 1, size) - cx
    dy = grid.view(1, size, 1) - cy
    return (0.5 - signed_distance(kind, dx, dy, radius)).clamp(0.0, 1.0)


def classify_kinds(crops: Tensor, centroids: Tensor, areas: Tensor) -> Tensor:
    """Index into `KINDS` of each object's best-matching kind: `[N]` int64.

    Args:
        crops: `[N, S, S]` soft coverage of each object (0 background, 1 inside) around it.
        centroids: `[N, 2]` its centroid (x, y) in crop pixel coordinates (pixel centres at +0.5).
        areas: `[N]` its soft area in pixels.
    """
    if crops.shape[0] == 0:
        return torch.zeros(0, dtype=torch.int64)
    crops = crops.float()
    scores = []
    for kind in KINDS:
        t = template(kind, crops.shape[-1], centroids.float(), areas.float())
        scores.append(
            torch.minimum(crops, t).sum((1, 2)) / torch.maximum(crops, t).sum((1, 2)).clamp_min(1e-6)
        )
    return torch.stack(scores, 1).argmax(1)
