"""Motion: per-frame object speed from detections, and generated-to-ground-truth speed ratios.

The speed of frame t is the mean, over the palette colours detected at both t - 1 and t, of the
displacement of the colour's soft centroid (pixels per frame); NaN at frame 0 and where no colour
persists. A frozen video has speed 0; jitter of a static object shows as spurious speed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from forcing.eval.detect import Detections


def speeds(detections: Detections) -> Tensor:
    """Speed per frame `[B, F]` (pixels per frame), NaN where undefined."""
    # [B, F - 1, C], NaN where the colour is absent at either frame
    step = (detections.centroid[:, 1:] - detections.centroid[:, :-1]).norm(dim=-1)
    valid = ~step.isnan()
    total = torch.where(valid, step, torch.zeros_like(step)).sum(-1)
    count = valid.sum(-1)
    speed = torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))
    first = torch.full((speed.shape[0], 1), float("nan"), dtype=speed.dtype)
    return torch.cat([first, speed], 1)


def _masked(speed: Tensor, reference: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Zero-filled speeds on the frames where the reference speed is defined, and that mask."""
    valid = ~reference.isnan()
    zero = torch.zeros_like(reference)
    return torch.where(valid, speed.nan_to_num(0.0), zero), torch.where(valid, reference, zero), valid.float()


def motion_ratio(speed: Tensor, reference: Tensor, frames: range) -> Tensor:
    """Generated / ground-truth total motion over `frames`, per video `[B]` (1 = right speed, 0 = frozen).

    Frames where the video shows no persisting object count as no motion; frames where the reference
    speed is undefined are skipped (NaN if none is left).
    """
    gen, ref, _ = _masked(speed[:, frames.start : frames.stop], reference[:, frames.start : frames.stop])
    total = ref.sum(1)
    return torch.where(total > 0, gen.sum(1) / total.clamp_min(1e-12), torch.full_like(total, float("nan")))


def motion_log_ratio(speed: Tensor, reference: Tensor, window: int = 9, eps: float = 0.1) -> Tensor:
    """Per-frame `log2` of the speed ratio, over a centred window of `window` frames: `[B, F]`.

    `log2((sum gen + eps n) / (sum ref + eps n))` with n valid frames in the window and `eps` pixels
    per frame, so a frozen video scores about log2(eps / true speed) rather than minus infinity.
    """
    gen, ref, valid = _masked(speed, reference)
    kernel = torch.ones(1, 1, window)
    pad = window // 2

    def box(x: Tensor) -> Tensor:
        return F.conv1d(F.pad(x.unsqueeze(1), (pad, window - 1 - pad)), kernel).squeeze(1)

    n = box(valid)
    return torch.log2((box(gen) + eps * n + 1e-12) / (box(ref) + eps * n + 1e-12))
