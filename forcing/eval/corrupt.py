"""Deterministic corruptions of videos `[B, 3, F, H, W]` in [-1, 1], for testing the metrics.

Each returns a new tensor in [-1, 1] and models one failure mode of long rollouts: over-exposure
(`brighten`), darkening (`darken`, `drift`), a colour cast (`colour_shift`), stalling (`freeze`), blur
(`blur`) and noise (`noise`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def brighten(videos: Tensor, amount: float = 0.3) -> Tensor:
    """Add `amount` (video units, [-1, 1] range) to every pixel and clip: over-exposure."""
    return (videos + amount).clamp(-1.0, 1.0)


def darken(videos: Tensor, factor: float = 0.6) -> Tensor:
    """Scale intensities in [0, 1] by `factor` (< 1 darkens towards black)."""
    return ((videos + 1.0) * factor - 1.0).clamp(-1.0, 1.0)


def drift(videos: Tensor, final_factor: float = 0.3) -> Tensor:
    """Progressive darkening: intensity factor going linearly from 1 at the first frame to `final_factor` at the last."""
    frames = videos.shape[2]
    factor = torch.linspace(1.0, final_factor, frames, dtype=videos.dtype, device=videos.device)
    return ((videos + 1.0) * factor.view(1, 1, frames, 1, 1) - 1.0).clamp(-1.0, 1.0)


def colour_shift(videos: Tensor, amount: float = 0.3) -> Tensor:
    """Colour cast: each channel mixed with the next (R <- G <- B <- R) by `amount` in [0, 1]; greys keep."""
    return (1.0 - amount) * videos + amount * videos.roll(-1, dims=1)


def freeze(videos: Tensor, start: int = 0) -> Tensor:
    """Stall: every frame from `start` on repeats frame `start`."""
    out = videos.clone()
    out[:, :, start:] = videos[:, :, start : start + 1]
    return out


def blur(videos: Tensor, size: int = 3, sigma: float | None = None) -> Tensor:
    """Spatial blur of every frame: a `size` x `size` box, or a Gaussian of `sigma` pixels if given (replicate borders)."""
    if sigma is None:
        kernel1d = torch.full((size,), 1.0 / size)
    else:
        offsets = torch.arange(size, dtype=torch.float32) - (size - 1) / 2.0
        kernel1d = torch.exp(-0.5 * (offsets / sigma) ** 2)
        kernel1d = kernel1d / kernel1d.sum()
    kernel = (kernel1d[:, None] * kernel1d[None, :]).to(videos).view(1, 1, size, size).repeat(3, 1, 1, 1)
    batch, channels, frames, height, width = videos.shape
    x = videos.transpose(1, 2).reshape(batch * frames, channels, height, width)
    pad = (size // 2, size - 1 - size // 2) * 2
    x = F.conv2d(F.pad(x, pad, mode="replicate"), kernel, groups=channels)
    return x.view(batch, frames, channels, height, width).transpose(1, 2).clamp(-1.0, 1.0)


def noise(videos: Tensor, std: float = 0.2, seed: int = 0) -> Tensor:
    """Add Gaussian noise of `std` (video units) from a generator seeded with `seed`, and clip."""
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn(videos.shape, generator=generator, dtype=torch.float32).to(videos)
    return (videos + std * eps).clamp(-1.0, 1.0)
