"""`evaluate`: every shapes-world metric of a batch of generated videos, at several horizons.

Horizon k ("@kx") is the window of `train_frames` frames ending at frame k * train_frames:
frames [(k - 1) T, k T) (see `forcing.eval.reference.horizon_window`). Scalars are means over the
batch and the window's frames; curves are batch means per frame, for plotting error accumulation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from forcing.eval._threads import torch_threads
from forcing.eval.alignment import prompt_alignment
from forcing.eval.analysis import FrameMetrics, frame_metrics
from forcing.eval.feature_net import ShapesFeatureNet
from forcing.eval.fvd import fvd
from forcing.eval.motion import motion_ratio
from forcing.eval.reference import ground_truth, horizon_tag, horizon_window
from forcing.world import ClipSpec

#: Scalar metric names, each logged as "<prefix>/<name>@<k>x" for every horizon k ("fvd" only with a feature net).
SCALARS: tuple[str, ...] = (
    "drift_brightness",
    "drift_saturation",
    "count_error",
    "size_error",
    "colour_fidelity",
    "shape_fidelity",
    "sharpness",
    "motion",
    "speed",
    "alignment",
    "stability",
    "fvd",
)


def _nanmean(x: Tensor) -> float:
    return float(x.float().nanmean())


def curves(metrics: FrameMetrics) -> dict[str, Tensor]:
    """Per-frame batch means `[F]` for plotting: every `SCALARS` name but alignment and fvd, plus speed_reference.

    "motion" is the geometric mean over the batch of the windowed speed ratio (1 = right speed).
    """
    return {
        "drift_brightness": metrics.brightness_drift.mean(0),
        "drift_saturation": metrics.saturation_drift.mean(0),
        "count_error": metrics.count_error.mean(0),
        "size_error": metrics.size_error.mean(0),
        "colour_fidelity": metrics.colour_fidelity.mean(0),
        "shape_fidelity": metrics.shape_fidelity.mean(0),
        "sharpness": metrics.sharpness.mean(0),
        "motion": torch.exp2(metrics.motion.mean(0)),
        "speed": metrics.speed.nanmean(0),
        "speed_reference": metrics.speed_reference.nanmean(0),
        "stability": metrics.stability.mean(0),
    }


def evaluate(
    videos: Tensor,
    specs: Sequence[ClipSpec],
    horizons: Sequence[float] = (1, 5, 10, 20),
    train_frames: int = 12,
    *,
    feature_net: ShapesFeatureNet | None = None,
    reference: Tensor | None = None,
    start_frame: int = 0,
    prefix: str = "eval",
    threads: int | None = 1,
) -> dict[str, dict]:
    """Evaluate generated videos against the shapes-world ground truth of their clips.

    Args:
        videos: `[B, 3, F, H, W]` in [-1, 1]; video b shows clip `specs[b]` from frame `start_frame`,
            conditioned on `prompt_for(specs[b])`.
        specs: the clip of each video.
        horizons: multiples k of the training length; each needs k * train_frames <= F.
        train_frames: the training horizon T in frames (the window length of every horizon).
        feature_net: the FVD feature network (`load_or_train_feature_net()`); without it no fvd keys.
        reference: ground-truth videos like `videos` (default: rendered from `specs`).
        start_frame: clip frame of video frame 0.
        prefix: key prefix.
        threads: torch intra-op threads while evaluating (the per-frame work is small tensors, fastest
            on one thread, and this leaves the other cores to training); None keeps the current count.

    Returns:
        {"scalars": {"<prefix>/<name>@<k>x": float for name in SCALARS, k in horizons},
         "curves": {name: [F] tensor} (see `curves`)}. Per horizon: drift_* = mean signed drift
        (generated minus ground truth); count_error, size_error = mean absolute errors; colour_ and
        shape_fidelity in [0, 1]; sharpness = mean log2 gradient-energy ratio; motion = mean over
        videos of generated / ground-truth total motion (1 ideal, 0 frozen); speed = generated
        pixels per frame; alignment = prompt alignment in [0, 1]; stability in (0, 100]; fvd = Frechet
        distance of the window clips to the ground-truth window clips (NaN with fewer than 2 videos).
    """
    num_frames, height, width = videos.shape[2:]
    windows = {horizon_tag(k): horizon_window(k, train_frames) for k in horizons}
    for tag, window in windows.items():
        if window.stop > num_frames:
            raise ValueError(
                f"horizon {tag} needs {window.stop} frames ({train_frames} per training horizon), videos have {num_frames}"
            )
    with torch_threads(threads):
        return _evaluate(videos, specs, windows, feature_net, reference, start_frame, prefix)


def _evaluate(
    videos: Tensor,
    specs: Sequence[ClipSpec],
    windows: dict[str, range],
    feature_net: ShapesFeatureNet | None,
    reference: Tensor | None,
    start_frame: int,
    prefix: str,
) -> dict[str, dict]:
    num_frames, height, width = videos.shape[2:]
    videos = videos.detach().float().cpu()
    if reference is None:
        reference = ground_truth(specs, num_frames, height, width, start_frame)
    metrics = frame_metrics(videos, specs, reference=reference, start_frame=start_frame)
    scalars: dict[str, float] = {}
    for tag, window in windows.items():
        frames = slice(window.start, window.stop)
        alignment = prompt_alignment(
            metrics.detections,
            metrics.reference_detections,
            specs,
            window,
            height,
            width,
            start_frame=start_frame,
        )
        values = {
            "drift_brightness": _nanmean(metrics.brightness_drift[:, frames]),
            "drift_saturation": _nanmean(metrics.saturation_drift[:, frames]),
            "count_error": _nanmean(metrics.count_error[:, frames]),
            "size_error": _nanmean(metrics.size_error[:, frames]),
            "colour_fidelity": _nanmean(metrics.colour_fidelity[:, frames]),
            "shape_fidelity": _nanmean(metrics.shape_fidelity[:, frames]),
            "sharpness": _nanmean(metrics.sharpness[:, frames]),
            "motion": _nanmean(motion_ratio(metrics.speed, metrics.speed_reference, window)),
            "speed": _nanmean(metrics.speed[:, frames]),
            "alignment": _nanmean(alignment),
            "stability": _nanmean(metrics.stability[:, frames]),
        }
        if feature_net is not None:
            values["fvd"] = (
                fvd(feature_net, videos[:, :, frames], reference[:, :, frames])
                if len(specs) >= 2
                else float("nan")
            )
        scalars.update({f"{prefix}/{name}@{tag}": value for name, value in values.items()})
    return {"scalars": scalars, "curves": curves(metrics)}
