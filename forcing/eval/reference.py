"""Ground truth of an evaluation batch and the frame windows of the horizons."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from forcing.world import ClipSpec, render


def ground_truth(
    specs: Sequence[ClipSpec], num_frames: int, height: int, width: int, start_frame: int = 0
) -> Tensor:
    """Render the ground-truth videos of `specs`: `[B, 3, num_frames, H, W]` in [-1, 1]."""
    return torch.stack([render(spec, num_frames, height, width, start_frame=start_frame) for spec in specs])


def horizon_window(horizon: float, train_frames: int) -> range:
    """Frames of horizon `k`: the window of `train_frames` frames that ends at `k * train_frames`.

    Horizon 1 is the training horizon [0, T); horizon 5 is [4T, 5T), the fifth clip-length window
    of the video; a horizon k < 1 is [0, kT). Metrics "@kx" are measured on this window, so they
    show how quality at that point of a long rollout compares with the trained horizon.
    """
    if horizon <= 0 or train_frames <= 0:
        raise ValueError(f"need horizon > 0 and train_frames > 0, got {horizon}, {train_frames}")
    end = round(horizon * train_frames)
    if end < 1:
        raise ValueError(f"horizon {horizon} x {train_frames} frames is less than one frame")
    return range(max(0, end - train_frames), end)


def horizon_tag(horizon: float) -> str:
    """Key suffix of a horizon: 1 -> "1x", 0.5 -> "0.5x"."""
    return f"{horizon:g}x"
