"""Video tensors to viewable files: grids, uint8 frames, mp4 (imageio-ffmpeg), TensorBoard layout."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor


def to_uint8_frames(video: Tensor, scale: int = 1) -> Tensor:
    """[3, F, H, W] in [-1, 1] -> [F, H*scale, W*scale, 3] uint8 (nearest-neighbour upscaling)."""
    frames = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # [3, F, H, W]
    frames = frames.permute(1, 2, 3, 0)  # [F, H, W, 3]
    if scale > 1:
        frames = frames.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    return frames.cpu()


def side_by_side(*videos: Tensor, gap: int = 1) -> Tensor:
    """Concatenate videos [3, F, H, W] along width with a white gap (e.g. ground truth | sample)."""
    parts: list[Tensor] = []
    for i, v in enumerate(videos):
        if i:
            parts.append(torch.ones_like(v[..., :gap]))
        parts.append(v)
    return torch.cat(parts, dim=-1)


def stack_rows(videos: list[Tensor], gap: int = 1) -> Tensor:
    """Stack videos [3, F, H, W] vertically with a white gap."""
    parts: list[Tensor] = []
    for i, v in enumerate(videos):
        if i:
            parts.append(torch.ones_like(v[..., :gap, :]))
        parts.append(v)
    return torch.cat(parts, dim=-2)


def write_mp4(video: Tensor, path: str | Path, fps: int = 8, scale: int = 4) -> Path:
    """Write [3, F, H, W] in [-1, 1] as an H.264 mp4 (sizes padded to even numbers)."""
    import imageio.v2 as imageio

    frames = to_uint8_frames(video, scale=scale)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = torch.nn.functional.pad(frames.permute(0, 3, 1, 2), (0, pad_w, 0, pad_h)).permute(0, 2, 3, 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimwrite(path, list(frames.numpy()), fps=fps, codec="libx264", quality=8, macro_block_size=1)
    return path


def for_tensorboard(video: Tensor) -> Tensor:
    """[3, F, H, W] in [-1, 1] -> [1, F, 3, H, W] in [0, 1] for `SummaryWriter.add_video`."""
    return ((video.detach().float().clamp(-1, 1) + 1) / 2).permute(1, 0, 2, 3).unsqueeze(0).cpu()
