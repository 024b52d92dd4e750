"""Object detection in shapes-world videos: segment by the known background, label by palette colour.

Per frame, every pixel is assigned to the nearest of {background} + the shape palette (RGB distance);
the pixels of each palette colour are split into 8-connected components (OpenCV), so touching or
overlapping shapes of different colours stay separate objects. Components smaller than `min_area`
pixels, or without a core (no pixel whose 3x3 neighbourhood is all that colour: the one-pixel band of
blended colour where two shapes' anti-aliased edges meet), are ignored. Each component gets
- its colour: the palette colour its pixels are nearest to;
- soft coverage weights: the pixel's blend fraction between background and that colour (the
  renderer's anti-aliasing alpha), over the component dilated by one pixel (edge pixels included,
  other components excluded); its soft area (sum) and soft centroid (weighted mean) are sub-pixel
  accurate on ground-truth renders;
- its kind: template matching (`forcing.eval.kinds`).
Objects are indexed by palette colour (colours are distinct within a clip); if two components share a
colour in a frame, both count but the larger one provides the colour's centroid, area and kind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from forcing.eval._threads import torch_threads
from forcing.eval.kinds import classify_kinds
from forcing.world import BACKGROUNDS, COLOURS, SIZE_RANGE

#: Palette colour names in a fixed order: the colour axis `C` of `Detections`.
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
_PALETTE = np.array([COLOURS[name] for name in COLOUR_NAMES], dtype=np.float32)  # [C, 3]
_DILATE = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class Detections:
    """Objects found in every frame of a batch of videos (B videos, F frames, C palette colours).

    Attributes:
        count: `[B, F]` int64 number of components of at least `min_area` pixels.
        area: `[B, F]` float32 total soft area (pixels) of those components.
        present: `[B, F, C]` bool, a component of that colour exists.
        centroid: `[B, F, C, 2]` float32 soft centroid (x, y) in pixels (pixel (i, j) centred at
            (j + .5, i + .5)); NaN where absent.
        colour_area: `[B, F, C]` float32 soft area of the colour's (largest) component, 0 where absent.
        kind: `[B, F, C]` int64 index into `forcing.world.KINDS`, -1 where absent.
    """

    count: Tensor
    area: Tensor
    present: Tensor
    centroid: Tensor
    colour_area: Tensor
    kind: Tensor

    @property
    def num_frames(self) -> int:
        """Number of frames F."""
        return self.count.shape[1]


def min_object_area(height: int, width: int) -> float:
    """Default smallest component (pixels): a quarter of the smallest shape the world draws (2 r_min^2)."""
    radius = SIZE_RANGE[0] * min(height, width)
    return max(2.0, 0.5 * radius * radius)


def crop_size(height: int, width: int) -> int:
    """Side of the square crop used for kind templates: fits the largest shape plus a margin."""
    return 2 * math.ceil(1.25 * SIZE_RANGE[1] * min(height, width)) + 3


def _crop(weights: np.ndarray, cx: float, cy: float, size: int) -> tuple[np.ndarray, float, float]:
    """A `size` x `size` crop of `weights` centred near (cx, cy), zero-padded; returns the crop and its origin."""
    x0, y0 = int(math.floor(cx)) - size // 2, int(math.floor(cy)) - size // 2
    out = np.zeros((size, size), np.float32)
    h, w = weights.shape
    xs, ys = max(0, x0), max(0, y0)
    xe, ye = min(w, x0 + size), min(h, y0 + size)
    if xe > xs and ye > ys:
        out[ys - y0 : ye - y0, xs - x0 : xe - x0] = weights[ys:ye, xs:xe]
    return out, float(x0), float(y0)


def _detect_video(video: np.ndarray, background: np.ndarray, min_area: float) -> dict[str, np.ndarray]:
    """Detections of one video `[3, F, H, W]` (numpy, clamped to [-1, 1]) on a known background RGB."""
    _, frames, height, width = video.shape
    colours = len(COLOUR_NAMES)
    palette = np.concatenate([background[None], _PALETTE])  # [1 + C, 3]
    distance = ((video[None] - palette[:, :, None, None, None]) ** 2).sum(1)  # [1 + C, F, H, W]
    nearest = distance.argmin(0)  # [F, H, W]: 0 background, 1 + c palette colour c
    axis = _PALETTE - background[None]
    axis = axis / (axis**2).sum(1, keepdims=True)
    alpha = np.einsum("cr,rfhw->cfhw", axis, video - background[:, None, None, None]).clip(0.0, 1.0)
    alpha[alpha < 1e-3] = 0.0  # below one 8-bit level; also keeps denormals (very slow arithmetic) out
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5

    out = {
        "count": np.zeros(frames, np.int64),
        "area": np.zeros(frames, np.float32),
        "present": np.zeros((frames, colours), bool),
        "centroid": np.full((frames, colours, 2), np.nan, np.float32),
        "colour_area": np.zeros((frames, colours), np.float32),
    }
    size = crop_size(height, width)
    crops, crop_centroids, crop_areas, slots = [], [], [], []
    for f in range(frames):
        objects = []  # (colour, mask) of every component that counts
        for c in range(colours):
            pixels = (nearest[f] == c + 1).astype(np.uint8)
            if not pixels.any():
                continue
            core = cv2.erode(pixels, _DILATE) > 0
            n, labels, stats, _ = cv2.connectedComponentsWithStats(pixels, connectivity=8)
            objects += [(c, labels == i) for i in range(1, n)
                        if stats[i, cv2.CC_STAT_AREA] >= min_area and (core & (labels == i)).any()]  # fmt: skip
        taken = np.zeros((height, width), bool)
        for _, mask in objects:
            taken |= mask
        for c, mask in objects:
            # the component and its one-pixel rim (anti-aliased edge pixels of any colour but another object's)
            near = (cv2.dilate(mask.astype(np.uint8), _DILATE) > 0) & (mask | ~taken)
            weights = alpha[c, f] * near
            area = float(weights.sum())
            if area <= 0.0:
                continue
            cx, cy = float((weights * xs).sum() / area), float((weights * ys).sum() / area)
            out["count"][f] += 1
            out["area"][f] += area
            if area <= out["colour_area"][f, c]:
                continue
            out["present"][f, c] = True
            out["colour_area"][f, c] = area
            out["centroid"][f, c] = (cx, cy)
            crop, x0, y0 = _crop(weights, cx, cy, size)
            crops.append(crop)
            crop_centroids.append((cx - x0, cy - y0))
            crop_areas.append(area)
            slots.append((f, c))
    kind = np.full((frames, colours), -1, np.int64)
    if crops:
        with torch_threads(1):  # small tensors: extra threads only add contention
            labels_ = classify_kinds(
                torch.from_numpy(np.stack(crops)), torch.tensor(crop_centroids), torch.tensor(crop_areas)
            ).numpy()
        for (f, c), k in zip(slots, labels_):
            kind[f, c] = k  # a later, larger component of the same colour overwrites an earlier one
    out["kind"] = kind
    return out


def detect(videos: Tensor, backgrounds: Sequence[str], min_area: float | None = None) -> Detections:
    """Detect the objects of every frame of `videos` `[B, 3, F, H, W]` in [-1, 1].

    Args:
        videos: the batch; values outside [-1, 1] are clamped.
        backgrounds: background colour name of each video (`forcing.world.BACKGROUNDS`), known from the spec.
        min_area: smallest component in pixels (default `min_object_area(H, W)`).
    """
    if videos.dim() != 5 or videos.shape[1] != 3:
        raise ValueError(f"expected videos [B, 3, F, H, W], got shape {tuple(videos.shape)}")
    if len(backgrounds) != videos.shape[0]:
        raise ValueError(f"got {len(backgrounds)} backgrounds for {videos.shape[0]} videos")
    height, width = videos.shape[-2:]
    min_area = min_object_area(height, width) if min_area is None else float(min_area)
    array = videos.detach().float().clamp(-1.0, 1.0).cpu().numpy()
    per_video = [
        _detect_video(array[b], np.array(BACKGROUNDS[name], np.float32), min_area)
        for b, name in enumerate(backgrounds)
    ]
    stacked = {key: torch.from_numpy(np.stack([d[key] for d in per_video])) for key in per_video[0]}
    return Detections(**stacked)
