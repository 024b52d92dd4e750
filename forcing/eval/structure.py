"""Structural fidelity per frame: object count, size, colours and kinds against the ground truth.

Each compares the detections of the generated videos with those of the ground-truth videos
(the same detector on the rendered reference), so the ground truth scores perfectly by construction
and occlusions of the ground truth are not counted as errors. All return `[B, F]` float32.
"""

from __future__ import annotations

import torch
from torch import Tensor

from forcing.eval.detect import Detections


def count_error(generated: Detections, reference: Detections) -> Tensor:
    """Absolute difference of the number of objects: 0 is perfect, 1 is one object lost or spawned."""
    return (generated.count - reference.count).abs().float()


def size_error(generated: Detections, reference: Detections, eps: float = 1.0) -> Tensor:
    """`|log2((A_gen + eps) / (A_ref + eps))|` of the total soft foreground area (pixels): 1 = twice or half."""
    return torch.log2((generated.area + eps) / (reference.area + eps)).abs()


def colour_fidelity(generated: Detections, reference: Detections) -> Tensor:
    """Jaccard index of the sets of palette colours present (1 where both are empty)."""
    both = (generated.present & reference.present).sum(-1).float()
    either = (generated.present | reference.present).sum(-1).float()
    return torch.where(either > 0, both / either.clamp_min(1.0), torch.ones_like(either))


def shape_fidelity(generated: Detections, reference: Detections) -> Tensor:
    """Fraction of the reference's objects (by colour) that the video shows with the same colour and kind."""
    same = reference.present & generated.present & (generated.kind == reference.kind)
    total = reference.present.sum(-1).float()
    return torch.where(total > 0, same.sum(-1).float() / total.clamp_min(1.0), torch.ones_like(total))
