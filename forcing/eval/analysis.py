"""All per-frame metrics of a batch of generated videos against their ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from forcing.eval.detect import COLOUR_NAMES, Detections, detect
from forcing.eval.envelope import bound_videos, outside, prompt_objects
from forcing.eval.frame_stats import brightness, saturation, sharpness
from forcing.eval.motion import motion_log_ratio, speeds
from forcing.eval.reference import ground_truth
from forcing.eval.stability import stability_curve
from forcing.eval.structure import colour_fidelity, count_error, shape_fidelity, size_error
from forcing.world import ClipSpec


@dataclass(frozen=True)
class FrameMetrics:
    """Per-frame metrics, each `[B, F]` float32, against the prompt's envelope (`forcing.eval.envelope`:
    the ground truth and the same clip at the low / high end of the sizes and speeds its prompt allows;
    a value inside the references' range has error 0, signed values are distances outside it).

    Attributes:
        brightness_drift: mean luma outside the references' range, in [-1, 1] (> 0 over-exposed).
        saturation_drift: mean chroma (max - min of RGB) outside the references' range.
        count_error: objects outside [fewest a reference shows, the prompt's count].
        size_error: |log2 total object area| outside the references' range.
        colour_fidelity: Jaccard index of the colours present (vs ground truth or prompt, the higher).
        shape_fidelity: fraction of objects with the right colour and kind (vs ground truth or prompt).
        sharpness: log2 gradient energy outside the references' range (< 0 blurred, > 0 noisy).
        speed: generated object speed, pixels per frame (NaN at frame 0 / nothing persisting).
        speed_reference: the same on the ground truth.
        motion: log2 speed ratio over a centred window, outside the references' range (< 0 stalling,
            > 0 jitter or too fast).
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
    # the prompt's envelope: the ground truth and its low / high size-and-speed bounds
    bounds = bound_videos(specs, num_frames, height, width, start_frame)
    gen, ref = detect(videos, backgrounds), detect(reference, backgrounds)
    envelope = [ref, *(detect(b, backgrounds) for b in bounds)]
    stated_count, stated, stated_kind = prompt_objects(specs, COLOUR_NAMES)
    speed, speed_ref = speeds(gen), speeds(ref)
    refs = [reference, *bounds]

    def motion_outside() -> Tensor:
        references = [speed_ref, *(speeds(d) for d in envelope[1:])]  # ground truth, then its bounds
        ratios = torch.stack([motion_log_ratio(speed, r, window=motion_window) for r in references])
        low, high = ratios.min(0).values, ratios.max(0).values  # log2(gen / reference) per reference
        return torch.where(low > 0, low, torch.where(high < 0, high, torch.zeros_like(low)))

    values = {
        "brightness_drift": outside(brightness(videos), [brightness(r) for r in refs]),
        "saturation_drift": outside(saturation(videos), [saturation(r) for r in refs]),
        "count_error": count_error(gen, envelope, stated_count),
        "size_error": size_error(gen, envelope),
        "colour_fidelity": colour_fidelity(gen, ref, stated),
        "shape_fidelity": shape_fidelity(gen, ref, stated, stated_kind),
        "sharpness": outside(torch.log2(sharpness(videos) + 1e-4), [torch.log2(sharpness(r) + 1e-4) for r in refs]),
        "motion": motion_outside(),
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
