"""Learning-rate schedule of the denoising paradigms: linear warm-up, then constant or cosine decay."""

from __future__ import annotations

import math


def lr_factor(step: int, warmup_steps: int, decay_steps: int | None = None, min_ratio: float = 0.1) -> float:
    """Multiplier of the base lr at optimiser step `step` (0-based).

    Linear warm-up over `warmup_steps`; then 1.0 when `decay_steps` is None, else a cosine from 1.0
    down to `min_ratio` over the next `decay_steps` steps, held at `min_ratio` afterwards.
    """
    warmup = max(1, warmup_steps)
    if step + 1 < warmup:
        return (step + 1) / warmup
    if decay_steps is None:
        return 1.0
    progress = min(1.0, (step + 1 - warmup) / max(1, decay_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
