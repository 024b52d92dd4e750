"""Reading the clips of a video folder: video files (imageio-ffmpeg), folders of frames, or tensors.

A clip is one of the folder's (recursively):
- a video file (`VIDEO_SUFFIXES`), decoded with imageio's ffmpeg reader;
- a folder of image frames (`IMAGE_SUFFIXES`, in file-name order);
- a `.pt` tensor: uint8 frames [F, H, W, 3], or float [3, F, H, W] in [-1, 1].
Clips are named by their path relative to the folder (posix), in sorted order.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
TENSOR_SUFFIX = ".pt"


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_clips(folder: str | Path) -> list[Path]:
    """Every clip under `folder`, sorted by relative path; a folder holding image files is one clip
    (its subfolders are not searched)."""
    root = Path(folder)
    found: list[Path] = []
    for here, dirs, files in os.walk(root):
        here_path = Path(here)
        if here_path != root and any(_is_image(Path(f)) for f in files):
            found.append(here_path)
            dirs[:] = []
            continue
        dirs.sort()
        for name in files:
            suffix = Path(name).suffix.lower()
            if suffix in VIDEO_SUFFIXES or suffix == TENSOR_SUFFIX:
                found.append(here_path / name)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _rgb(frame: Tensor) -> Tensor:
    """[H, W] or [H, W, C] uint8 -> [H, W, 3] (grey repeated, alpha dropped)."""
    if frame.dim() == 2:
        frame = frame[..., None]
    return frame[..., :3] if frame.shape[-1] >= 3 else frame.expand(*frame.shape[:2], 3)


def read_frames(path: str | Path, max_frames: int | None = None) -> Tensor:
    """The first `max_frames` frames of a clip (all when None): uint8 [F, H, W, 3]."""
    import imageio.v2 as imageio

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if _is_image(p))[:max_frames]
        frames = [_rgb(torch.from_numpy(imageio.imread(p))) for p in files]
    elif path.suffix.lower() == TENSOR_SUFFIX:
        video = torch.load(path, map_location="cpu", weights_only=True)
        if video.dtype != torch.uint8:  # float [3, F, H, W] in [-1, 1]
            video = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0)
        frames = list(video[:max_frames])
    else:
        frames = []
        with imageio.get_reader(path, format="ffmpeg") as reader:
            for frame in reader:
                if max_frames is not None and len(frames) >= max_frames:
                    break
                frames.append(_rgb(torch.from_numpy(frame)))
    if not frames:
        raise ValueError(f"{path} holds no frame")
    return torch.stack(frames)
