"""Fit decoded frames to the world's clip size: the first frames, resized to cover, centre-cropped."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


class ShortClipError(ValueError):
    """A clip with fewer frames than the world's clip length (skipped by the encoder)."""


def cover_size(height: int, width: int, out_height: int, out_width: int) -> tuple[int, int]:
    """The size (h, w) that keeps the aspect ratio of a height x width frame and covers the target."""
    scale = max(out_height / height, out_width / width)
    return max(out_height, round(height * scale)), max(out_width, round(width * scale))


@torch.no_grad()
def fit_clip(frames: Tensor, num_frames: int, height: int, width: int, chunk: int = 16) -> Tensor:
    """uint8 frames [F, H, W, 3] -> a clip [3, num_frames, height, width] in [-1, 1]: the first
    `num_frames` frames, resized (bilinear, antialiased) to cover height x width, centre-cropped.
    Raises `ShortClipError` when there are fewer than `num_frames` frames."""
    if frames.shape[0] < num_frames:
        raise ShortClipError(f"{frames.shape[0]} frames, fewer than {num_frames}")
    h, w = int(frames.shape[1]), int(frames.shape[2])
    rh, rw = cover_size(h, w, height, width)
    top, left = (rh - height) // 2, (rw - width) // 2
    parts = []
    for lo in range(0, num_frames, chunk):
        x = frames[lo : min(num_frames, lo + chunk)].permute(0, 3, 1, 2).float() / 127.5 - 1.0  # [f, 3, H, W]
        if (rh, rw) != (h, w):
            x = F.interpolate(x, size=(rh, rw), mode="bilinear", antialias=True, align_corners=False)
        parts.append(x[:, :, top : top + height, left : left + width])
    return torch.cat(parts).permute(1, 0, 2, 3).clamp(-1.0, 1.0).contiguous()  # [3, F, H, W]
