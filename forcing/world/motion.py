"""Closed-form motion: constant velocity with elastic reflection off the walls.

Each axis of a centre moves on an unfolded line `u(t) = u0 + v t`; folding it into the free
range [0, L] (L = extent - 2 r) is a triangle wave, so the position at any frame index is
computed directly, without simulating from frame 0.

Pixel convention: continuous coordinates with x in [0, width], y in [0, height], the pixel at
(row i, column j) covering [j, j + 1) x [i, i + 1) with its centre at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from forcing.world.spec import ClipSpec


def frame_indices(frames: Tensor | Sequence[int] | range) -> Tensor:
    """Frame indices as a 1-D int64 tensor (accepts a tensor, a sequence or a range)."""
    out = torch.as_tensor(list(frames) if isinstance(frames, range) else frames, dtype=torch.int64)
    if out.dim() != 1:
        raise ValueError(f"frames must be 1-D, got shape {tuple(out.shape)}")
    if (out < 0).any():
        raise ValueError("frame indices must be non-negative")
    return out


def _fold(u: Tensor, v: float, length: float) -> tuple[Tensor, Tensor]:
    """Fold unfolded positions `u` (velocity `v`) into [0, length]; return (position, velocity).

    The velocity is the right derivative: at the instant of touching a wall it already points away.
    """
    phase = torch.remainder(u, 2.0 * length)
    position = torch.where(phase <= length, phase, 2.0 * length - phase)
    if v > 0:
        forward = phase < length
    elif v < 0:
        forward = (phase > 0) & (phase <= length)
    else:
        return position, torch.zeros_like(u)
    velocity = torch.where(forward, torch.full_like(u, v), torch.full_like(u, -v))
    return position, velocity


def trajectory(
    spec: ClipSpec, frames: Tensor | Sequence[int] | range, height: int, width: int
) -> tuple[Tensor, Tensor]:
    """Centres and velocities of every shape at the given frame indices.

    Returns:
        centres [F, S, 2] float64 in pixels (x, y), and velocities [F, S, 2] float64 in pixels per
        frame (x right, y down), the velocity at frame t being the one used from t to t + 1.
    """
    t = frame_indices(frames).to(torch.float64)
    scale = float(min(height, width))
    centres = torch.zeros(t.numel(), len(spec.shapes), 2, dtype=torch.float64)
    velocities = torch.zeros_like(centres)
    for s, shape in enumerate(spec.shapes):
        radius = shape.size * scale
        for axis, extent in enumerate((width, height)):
            length = extent - 2.0 * radius
            if length <= 0:
                raise ValueError(f"shape of size {shape.size} does not fit a {height}x{width} frame")
            v = shape.velocity[axis] * scale
            u = shape.position[axis] * length + v * t
            position, velocity = _fold(u, v, length)
            centres[:, s, axis] = position + radius
            velocities[:, s, axis] = velocity
    return centres, velocities
