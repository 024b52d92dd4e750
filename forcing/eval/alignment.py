"""Prompt alignment: the fraction of what the prompt states that the video shows.

For every shape the prompt states ("a red circle moving up-left fast"), four checks on a window of
frames, each 1 (shown) or 0 (not), skipped when the ground truth itself cannot show it there:
- colour: the colour is detected in at least half of the window frames where the ground-truth
  video shows it (skipped if that is fewer than max(2, window / 4) frames: hidden behind another shape);
- kind: the object of that colour has the stated kind in at least half of the frames where the
  ground-truth detector finds the stated kind (skipped if fewer than max(2, window / 4));
- direction and speed, from the first frame pair (t, t + step) of the window with no wall bounce in
  between and a clean ground-truth measurement (its detected displacement within 0.25 px of the
  exact one): the video's displacement of that colour must lie within 22.5 degrees (half a compass
  sector) of the exact displacement, and its speed class (`speed_name`; "still" below half the
  slowest stated speed) must match. On the pair that starts the clip (frame 0) the exact direction
  is the stated one and only it counts; on any later pair a wall reflection of it counts too (flipped
  in x, in y or both), because a video of the prompt has bounced off its own walls at its own times
  (its sizes and positions are its own draw, not the ground truth's).
A video's alignment is the mean of its checks (NaN if none applies).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from forcing.eval.detect import COLOUR_NAMES, Detections
from forcing.world import KINDS, SPEEDS, ClipSpec, parse_prompt, prompt_for, speed_name, state_at

_COS_SECTOR = math.cos(math.pi / 8.0)
_CLEAN_PX = 0.25
#: the stated direction and its wall reflections (x flipped, y flipped, both), as (x, y) factors
_REFLECTIONS = [torch.tensor(f, dtype=torch.float64) for f in ((1, 1), (-1, 1), (1, -1), (-1, -1))]


def _speed_class(speed: float) -> str:
    """`speed_name` of a speed (min(H, W) per frame), or "still" below half the slowest stated speed."""
    return "still" if speed < 0.5 * SPEEDS["slowly"][0] else speed_name(speed)


def _motion_checks(
    gen: Detections,
    ref: Detections,
    b: int,
    c: int,
    centres: Tensor,
    velocities: Tensor,
    frames: range,
    step: int,
    scale: float,
    clip_start: int,
) -> list[float]:
    """Direction and speed checks of colour `c` of video `b`; `centres`/`velocities` `[W, 2]` exact, per
    window frame; `clip_start`: clip frame of video frame 0."""
    for i in range(len(frames) - step):
        t, u = frames[i], frames[i + step]
        if not bool((velocities[i : i + step + 1] == velocities[i]).all()):
            continue  # a bounce in [t, u]
        if not (ref.present[b, t, c] and ref.present[b, u, c]):
            continue
        exact = (centres[i + step] - centres[i]).double()
        measured = (ref.centroid[b, u, c] - ref.centroid[b, t, c]).double()
        if (measured - exact).norm() > _CLEAN_PX or exact.norm() == 0:
            continue
        if not (gen.present[b, t, c] and gen.present[b, u, c]):
            return [0.0, 0.0]
        shown = (gen.centroid[b, u, c] - gen.centroid[b, t, c]).double()
        norm = float(shown.norm())
        allowed = _REFLECTIONS[:1] if clip_start + t == 0 else _REFLECTIONS
        direction = norm > 0 and any(
            float(shown @ (exact * flip)) / (norm * float(exact.norm())) >= _COS_SECTOR for flip in allowed
        )
        speed = _speed_class(norm / step / scale) == _speed_class(float(exact.norm()) / step / scale)
        return [float(direction), float(speed)]
    return []


def prompt_alignment(
    detections: Detections,
    reference_detections: Detections,
    specs: Sequence[ClipSpec],
    frames: range,
    height: int,
    width: int,
    *,
    start_frame: int = 0,
    step: int = 3,
) -> Tensor:
    """Prompt alignment in [0, 1] of each video `[B]` on the window `frames` (indices into the videos).

    Args:
        detections, reference_detections: objects of the generated and the ground-truth videos.
        specs: the clip of each video; its prompt `prompt_for(spec)` states what is checked.
        frames: the window of video frames; `height`, `width`: the video size.
        start_frame: clip frame of video frame 0.
        step: frames between the two frames a displacement is measured on (shortened to fit the window).
    """
    out = torch.full((len(specs),), float("nan"))
    min_frames = max(2, len(frames) // 4)
    scale = float(min(height, width))
    step = min(step, len(frames) - 1)
    for b, spec in enumerate(specs):
        stated = parse_prompt(prompt_for(spec)).shapes
        exact = state_at(spec, [start_frame + f for f in frames], height, width)
        checks: list[float] = []
        for s, shape in enumerate(stated):
            c = COLOUR_NAMES.index(shape.colour)
            seen = reference_detections.present[b, frames.start : frames.stop, c]
            if int(seen.sum()) < min_frames:
                continue
            shown = detections.present[b, frames.start : frames.stop, c]
            checks.append(float(shown[seen].float().mean() >= 0.5))
            kind = KINDS.index(shape.kind)
            gt_kind = reference_detections.kind[b, frames.start : frames.stop, c] == kind
            if int(gt_kind.sum()) >= min_frames:
                gen_kind = detections.kind[b, frames.start : frames.stop, c] == kind
                checks.append(float(gen_kind[gt_kind].float().mean() >= 0.5))
            if step >= 1:
                checks += _motion_checks(
                    detections,
                    reference_detections,
                    b,
                    c,
                    exact["centres"][:, s],
                    exact["velocities"][:, s],
                    frames,
                    step,
                    scale,
                    start_frame,
                )
        if checks:
            out[b] = sum(checks) / len(checks)
    return out
