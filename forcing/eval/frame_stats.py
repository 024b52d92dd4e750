"""Per-frame image statistics of videos: brightness, saturation and sharpness.

All take a batch `[B, 3, F, H, W]` in [-1, 1] (values outside are clamped, as a display would)
and return `[B, F]` float32.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Rec. 601 luma weights of (R, G, B).
LUMA = (0.299, 0.587, 0.114)


def _unit(videos: Tensor) -> Tensor:
    if videos.dim() != 5 or videos.shape[1] != 3:
        raise ValueError(f"expected videos [B, 3, F, H, W], got shape {tuple(videos.shape)}")
    return ((videos.detach().float().clamp(-1.0, 1.0) + 1.0) * 0.5).cpu()


def brightness(videos: Tensor) -> Tensor:
    """Mean Rec. 601 luma per frame, in [0, 1] (0 black, 1 white): `[B, F]`."""
    x = _unit(videos)
    weights = torch.tensor(LUMA).view(1, 3, 1, 1, 1)
    return (x * weights).sum(1).mean((-2, -1))


def saturation(videos: Tensor) -> Tensor:
    """Mean chroma `max(R, G, B) - min(R, G, B)` per frame, in [0, 1] (0 grey, 1 pure colour): `[B, F]`.

    Chroma is HSV saturation times value: unlike `(max - min) / max` it stays well-conditioned on
    dark pixels (noise on a black background would read as full saturation), and it falls both when
    colours wash out to white (over-exposure) and when they fade to black (darkening).
    """
    x = _unit(videos)
    return (x.max(1).values - x.min(1).values).mean((-2, -1))


def sharpness(videos: Tensor) -> Tensor:
    """Gradient energy per frame: mean squared horizontal plus vertical finite difference (in [0, 1] units): `[B, F]`.

    Squared, so that spreading an edge over more pixels (blur) lowers it (absolute differences would
    keep an edge's total variation); noise raises it. Compared with the ground truth it measures lost
    or spurious detail.
    """
    x = _unit(videos)
    dx = (x[..., :, 1:] - x[..., :, :-1]).square().mean((1, -2, -1))
    dy = (x[..., 1:, :] - x[..., :-1, :]).square().mean((1, -2, -1))
    return dx + dy
