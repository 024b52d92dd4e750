"""Calibration of the shapes-world metrics: every reported key on degraded ground truth and on what a
perfect generator could draw (another clip of the same prompt), at 1x and 5x the training horizon.

    python -m experiments.calibration.calibrate [--videos 32] [--out experiments/calibration/calibration.json]

Prints a markdown table per horizon and the stability terms (mean e_i / tau_i) of each row, and writes
every scalar to `--out`. Study rows are read against it: a model cannot score above the "another clip"
row of its world (nor above the "codec" rows in the latent world).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from forcing.eval import corrupt
from forcing.eval.analysis import frame_metrics
from forcing.eval.evaluate import evaluate
from forcing.eval.feature_cache import load_or_train_feature_net
from forcing.eval.reference import ground_truth
from forcing.eval.stability import TOLERANCES
from forcing.world import ClipSpec

TRAIN_FRAMES, HORIZONS = 12, (1, 5)
KEYS = ("stability", "alignment", "count_error", "size_error", "colour_fidelity", "shape_fidelity", "sharpness",
        "motion", "drift_brightness", "fvd")  # fmt: skip


def codec_round_trip(videos: Tensor) -> Tensor:
    """decode(encode(videos)) through the shipped shapes codec (the latent world's ceiling)."""
    from forcing.encoders.shapes_codec import SHIPPED_CODEC, ShapesCodec

    codec = ShapesCodec.from_file(SHIPPED_CODEC)
    with torch.no_grad():
        return torch.cat([codec.decode(codec.encode(v[None])).clamp(-1, 1) for v in videos])


def rows(specs: list[ClipSpec], frames: int) -> dict[str, Callable[[Tensor], Tensor]]:
    """Row name -> a function of the ground truth giving the videos to score against it."""
    other = ground_truth([s.another_clip(10**6 + i) for i, s in enumerate(specs)], frames, 32, 32)
    return {
        "ground truth": lambda gt: gt,
        "blur sigma 0.7 px": lambda gt: corrupt.blur(gt, size=5, sigma=0.7),
        "blur sigma 1.2 px": lambda gt: corrupt.blur(gt, size=5, sigma=1.2),
        "noise std 0.05": lambda gt: corrupt.noise(gt, std=0.05),
        "noise std 0.15": lambda gt: corrupt.noise(gt, std=0.15),
        "brightness +0.2": lambda gt: corrupt.brighten(gt, 0.2),
        "colour shift 0.3": lambda gt: corrupt.colour_shift(gt, 0.3),
        "drift to 0.5 at 5x": lambda gt: corrupt.drift(gt, 0.5),
        "frozen after frame 12": lambda gt: corrupt.freeze(gt, TRAIN_FRAMES),
        "shapes codec round trip": codec_round_trip,
        "another clip of the same prompt": lambda gt: other,
        "another clip, codec round trip": lambda gt: codec_round_trip(other),
    }


def stability_terms(videos: Tensor, specs: list[ClipSpec], reference: Tensor) -> dict[str, float]:
    """Mean e_i / tau_i of each stability term over videos and frames (the score is 100 * 2^-sum)."""
    m = frame_metrics(videos, specs, reference=reference)
    errors = {"brightness": m.brightness_drift, "saturation": m.saturation_drift, "count": m.count_error,
              "size": m.size_error, "colour": 1 - m.colour_fidelity, "shape": 1 - m.shape_fidelity,
              "sharpness": m.sharpness, "motion": m.motion}  # fmt: skip
    return {k: float((v.abs().nan_to_num(0.0) / TOLERANCES[k]).mean()) for k, v in errors.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=32, help="validation clips (seeds 0..n-1, 1-3 shapes)")
    p.add_argument("--max-shapes", type=int, default=3)
    p.add_argument("--out", default=str(Path(__file__).with_name("calibration.json")))
    args = p.parse_args()
    torch.set_num_threads(1)
    specs = [ClipSpec.sample(i, max_shapes=args.max_shapes) for i in range(args.videos)]
    frames = TRAIN_FRAMES * max(HORIZONS)
    gt = ground_truth(specs, frames, 32, 32)
    net = load_or_train_feature_net()
    results: dict[str, dict[str, float]] = {}
    for name, make in rows(specs, frames).items():
        videos = make(gt)
        scalars = evaluate(videos, specs, HORIZONS, TRAIN_FRAMES, feature_net=net, reference=gt)["scalars"]
        terms = stability_terms(videos[:, :, :TRAIN_FRAMES], specs, gt[:, :, :TRAIN_FRAMES])
        results[name] = {k.removeprefix("eval/"): v for k, v in scalars.items()} | {f"term/{k}@1x": v for k, v in terms.items()}
    for h in HORIZONS:
        print(f"\n| @{h}x | " + " | ".join(KEYS) + "\n|---|" + "---:|" * len(KEYS))
        for name, r in results.items():
            print(f"| {name} | " + " | ".join(f"{r[f'{k}@{h}x']:.3g}" for k in KEYS) + " |")
    print("\n| stability terms @1x (e / tau; the score is 100 * 2^-sum) | " + " | ".join(TOLERANCES) + " |\n|---|"
          + "---:|" * len(TOLERANCES))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{r[f'term/{k}@1x']:.2f}" for k in TOLERANCES) + " |")
    meta = {"videos": args.videos, "max_shapes": args.max_shapes, "horizons": HORIZONS, "train_frames": TRAIN_FRAMES}
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
