"""Shapes-world evaluation shared by all paradigms: exact drift, structure, motion and alignment metrics,
a 0-100 visual-stability score and an FVD on features of a small network trained on the world.

Entry point: `evaluate(videos, specs, horizons, train_frames, feature_net=...)`; see README.md.
"""

from forcing.eval.alignment import prompt_alignment
from forcing.eval.analysis import FrameMetrics, frame_metrics
from forcing.eval.detect import COLOUR_NAMES, Detections, detect, min_object_area
from forcing.eval.evaluate import SCALARS, curves, evaluate
from forcing.eval.feature_cache import (
    default_cache_dir,
    load_feature_net,
    load_or_train_feature_net,
    save_feature_net,
)
from forcing.eval.feature_net import ShapesFeatureNet, clip_labels, label_accuracy, train_feature_net
from forcing.eval.frame_stats import brightness, saturation, sharpness
from forcing.eval.fvd import frechet_distance, fvd, video_features
from forcing.eval.kinds import classify_kinds
from forcing.eval.motion import motion_log_ratio, motion_ratio, speeds
from forcing.eval.reference import ground_truth, horizon_tag, horizon_window
from forcing.eval.stability import TOLERANCES, stability_curve
from forcing.eval.structure import colour_fidelity, count_error, shape_fidelity, size_error

__all__ = [
    "COLOUR_NAMES",
    "SCALARS",
    "TOLERANCES",
    "Detections",
    "FrameMetrics",
    "ShapesFeatureNet",
    "brightness",
    "classify_kinds",
    "clip_labels",
    "colour_fidelity",
    "count_error",
    "curves",
    "default_cache_dir",
    "detect",
    "evaluate",
    "frame_metrics",
    "frechet_distance",
    "fvd",
    "ground_truth",
    "horizon_tag",
    "horizon_window",
    "label_accuracy",
    "load_feature_net",
    "load_or_train_feature_net",
    "min_object_area",
    "motion_log_ratio",
    "motion_ratio",
    "prompt_alignment",
    "saturation",
    "save_feature_net",
    "shape_fidelity",
    "sharpness",
    "size_error",
    "speeds",
    "stability_curve",
    "train_feature_net",
    "video_features",
]
