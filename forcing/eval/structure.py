"""Structural fidelity per frame: object count, size, colours and kinds, against what the prompt allows.

Each compares the detections of the generated videos with those of the references of the prompt's
envelope (`forcing.eval.envelope`: the ground-truth clip and its low / high size-and-speed bounds, the
same detector on the rendered references) and with the prompt itself, so the ground truth scores
perfectly by construction, occlusions of the ground truth are not counted as errors, and a generated
video is not penalised for sizes the prompt leaves free. All return `[B, F]` float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from forcing.eval.detect import Detections
from forcing.eval.envelope import outside


def count_error(generated: Detections, references: Sequence[Detections], stated: Tensor) -> Tensor:
    """Objects outside [fewest shown by a reference, the prompt's `stated` count `[B]`]: 0 inside,
    1 = one object lost (beyond occlusion) or spawned."""
    fewest = torch.stack([r.count for r in references]).min(0).values.float()
    return outside(generated.count.float(), [fewest, stated.float()[:, None]]).abs()


def size_error(generated: Detections, references: Sequence[Detections], eps: float = 1.0) -> Tensor:
    """`|log2(A_gen + eps)|` outside the references' `log2(A + eps)` range of total soft foreground area
    (pixels): 1 = twice the largest or half the smallest area the prompt allows."""
    return outside(torch.log2(generated.area + eps), [torch.log2(r.area + eps) for r in references]).abs()


def _jaccard(a: Tensor, b: Tensor) -> Tensor:
    both, either = (a & b).sum(-1).float(), (a | b).sum(-1).float()
    return torch.where(either > 0, both / either.clamp_min(1.0), torch.ones_like(either))


def colour_fidelity(generated: Detections, reference: Detections, stated: Tensor) -> Tensor:
    """Jaccard index of the palette colours present against the ground truth's or the prompt's
    (`stated` `[B, C]`), whichever is higher (1 where both sets are empty)."""
    return torch.maximum(_jaccard(generated.present, reference.present),
                         _jaccard(generated.present, stated[:, None].expand_as(generated.present)))  # fmt: skip


def _shown(generated: Detections, present: Tensor, kind: Tensor) -> Tensor:
    same = present & generated.present & (generated.kind == kind)
    total = present.sum(-1).float()
    return torch.where(total > 0, same.sum(-1).float() / total.clamp_min(1.0), torch.ones_like(total))


def shape_fidelity(generated: Detections, reference: Detections, stated: Tensor, stated_kind: Tensor) -> Tensor:
    """Fraction of the objects (by colour) that the video shows with the same colour and kind: of the
    ground truth's visible objects or of the prompt's shapes (`stated` `[B, C]`, `stated_kind` `[B, C]`),
    whichever is higher."""
    prompt = _shown(generated, stated[:, None].expand_as(generated.present), stated_kind[:, None].expand_as(generated.kind))
    return torch.maximum(_shown(generated, reference.present, reference.kind), prompt)
