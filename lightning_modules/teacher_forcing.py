"""Teacher Forcing (REFERENCE §3): AR diffusion trained with clean ground-truth context.

The input is [clean frames | noisy frames] in one sequence; clean tokens attend block-causally
among themselves, noisy block i attends itself and clean blocks < i; both halves share RoPE
positions; per-block independent timesteps; the loss covers the noisy half only. Inference is
many-step AR sampling with clean context in the KV cache.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from lightning_modules.denoising import DenoisingModule


class TeacherForcing(DenoisingModule):
    """Teacher Forcing paradigm."""

    mode = "teacher_forcing"

    def forward_kwargs(self, x0: Tensor) -> dict[str, Any]:
        """The TF mask over [clean x0 | noisy x_t]; clean half at timestep 0."""
        return {**super().forward_kwargs(x0), "clean_x": x0}
