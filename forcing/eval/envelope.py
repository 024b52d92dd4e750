"""The prompt's envelope: what a video conditioned on a clip's prompt may show, for scoring generators.

A prompt states the background and each shape's colour, kind, direction and speed class; the world
draws the size and the exact speed within ranges (`forcing.world.palette`). A generated video is a
valid video of its prompt whatever sizes and speeds in those ranges it drew, so every per-frame statistic
of a generated video is compared with the interval spanned by three references: the ground-truth clip
and the same clip with every size and speed at the low and the high end of its range
(`ClipSpec.at_bounds`). Inside the interval the error is 0; outside it is the signed distance to it.
The ground truth is inside by construction (it scores exactly 100).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from forcing.eval.reference import ground_truth
from forcing.world import KINDS, ClipSpec


def bound_videos(specs: Sequence[ClipSpec], num_frames: int, height: int, width: int, start_frame: int = 0) -> list[Tensor]:
    """The low and the high bound clips of `specs`, rendered like the ground truth: two `[B, 3, F, H, W]`."""
    return [
        ground_truth([s.at_bounds(high) for s in specs], num_frames, height, width, start_frame)
        for high in (False, True)
    ]


def outside(x: Tensor, references: Sequence[Tensor]) -> Tensor:
    """Signed distance of `x` outside [min, max] of `references` (broadcast elementwise): 0 inside,
    `x - max` above, `x - min` (negative) below."""
    stacked = torch.stack(torch.broadcast_tensors(*references))
    low, high = stacked.min(0).values, stacked.max(0).values
    return (x - high).clamp_min(0.0) - (low - x).clamp_min(0.0)


def prompt_objects(specs: Sequence[ClipSpec], colours: Sequence[str]) -> tuple[Tensor, Tensor, Tensor]:
    """What each prompt states, on the detector's colour axis: number of shapes `[B]`, colour present
    `[B, C]` (bool) and kind index `[B, C]` (-1 where absent)."""
    count = torch.tensor([len(s.shapes) for s in specs], dtype=torch.float32)
    present = torch.zeros(len(specs), len(colours), dtype=torch.bool)
    kind = torch.full((len(specs), len(colours)), -1, dtype=torch.int64)
    for b, spec in enumerate(specs):
        for shape in spec.shapes:
            c = colours.index(shape.colour)
            present[b, c], kind[b, c] = True, KINDS.index(shape.kind)
    return count, present, kind
