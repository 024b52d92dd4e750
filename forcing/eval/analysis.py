"""All per-frame metrics of a batch of generated videos against their ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from forcing.eval.detect import Detections, detect
from forcing.eval.frame_stats import brightness, saturation, sharpness
from forcing.eval.motion import motion_log_ratio, speeds
from forcing.eval.reference import ground_truth
from forcing.eval.stability import stability_curve
from forcing.eval.structure import colour_fidelity, count_error, shape_fidelity, size_error
from forcing.world import ClipSpec


@dataclass(frozen=True)
class FrameMetrics:
    """Per-frame metrics, each `[B, F]` float32 (generated minus / relative to ground truth).

    Attributes:
        brightness_drift: mean luma difference in [-1, 1] (> 0 over-exposed, < 0 darkened).
        saturation_drift: mean chroma (max - min of RGB) difference in [-1, 1].
        count_error: |object count difference|.
        size_error: |log2 total object area ratio|.
        colour_fidelity: Jaccard index of the colours present, in [0, 1].
        shape_fidelity: fraction of ground-truth objects with the right colour and kind, in [0, 1].
        sharpness: log2 gradient-energy ratio (< 0 blurred, > 0 noisy).
        speed: generated object speed, pixels per frame (NaN at frame 0 / nothing persisting).
        speed_reference: the same on the ground truth.
        motion: log2 speed ratio over a centred window (< 0 stalling, > 0 jitter or too fast).
        stability: `forcing.eval.stability` score per frame, in (0, 100].
        detections, reference_detections: the objects found in the videos and in the ground truth.
    """

    brightness_drift: Tensor
    saturation_drift: Tensor
    count_error: Tensor
    size_error: Tensor
    colour_fidelity: Tensor
    shape_fidelity: Tensor
    sharpness: Tensor
    speed: Tensor
    speed_reference: Tensor
    motion: Tensor
    stability: Tensor
    detections: Detections
    reference_detections: Detections


def frame_metrics(
    videos: Tensor,
    specs: Sequence[ClipSpec],
    *,
    reference: Tensor | None = None,
    start_frame: int = 0,
    motion_window: int = 9,
) -> FrameMetrics:
    """Compare `videos` `[B, 3, F, H, W]` in [-1, 1] frame by frame with the ground truth of `specs`.

    Args:
        videos: generated videos; frame i shows frame `start_frame + i` of its clip.
        specs: the clip of each video (its prompt is `prompt_for(spec)`).
        reference: ground-truth videos of the same shape (default: rendered from `specs`).
        start_frame: clip frame of the first video frame.
        motion_window: frames of the centred window of the per-frame motion ratio.
    """
    if videos.dim() != 5 or videos.shape[1] != 3:
        raise ValueError(f"expected videos [B, 3, F, H, W], got shape {tuple(videos.shape)}")
    if len(specs) != videos.shape[0]:
        raise ValueError(f"got {len(specs)} specs for {videos.shape[0]} videos")
    videos = videos.detach().float().cpu()
    num_frames, height, width = videos.shape[2:]
    if reference is None:
        reference = ground_truth(specs, num_frames, height, width, start_frame)
    elif reference.shape != videos.shape:
        raise ValueError(f"reference shape {tuple(reference.shape)} != videos shape {tuple(videos.shape)}")
    reference = reference.detach().float().cpu()
    backgrounds = [spec.background for spec in specs]
    gen, ref = detect(videos, backgrounds), detect(reference, backgrounds)
    speed, speed_ref = speeds(gen), speeds(ref)
    values = {
        "brightness_drift": brightness(videos) - brightness(reference),
        "saturation_drift": saturation(videos) - saturation(reference),
        "count_error": count_error(gen, ref),
        "size_error": size_error(gen, ref),
        "colour_fidelity": colour_fidelity(gen, ref),
        "shape_fidelity": shape_fidelity(gen, ref),
        "sharpness": torch.log2((sharpness(videos) + 1e-4) / (sharpness(reference) + 1e-4)),
        "motion": motion_log_ratio(speed, speed_ref, window=motion_window),
    }
    stability = stability_curve(
        {
            "brightness": values["brightness_drift"],
            "saturation": values["saturation_drift"],
            "count": values["count_error"],
            "size": values["size_error"],
            "colour": 1.0 - values["colour_fidelity"],
            "shape": 1.0 - values["shape_fidelity"],
            "sharpness": values["sharpness"],
            "motion": values["motion"],
        }
    )
    return FrameMetrics(
        **values,
        speed=speed,
        speed_reference=speed_ref,
        stability=stability,
        detections=gen,
        reference_detections=ref,
    )
