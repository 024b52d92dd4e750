"""What a paradigm hands a distribution-matching objective (:class:`LossInputs`), and the timestep
and noise an objective draws once per loss (:class:`NoiseDraw`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..diffusion.flow import add_noise, sigma_from_t
from ..diffusion.guidance import Conditioning, Denoiser

#: an interval ``(lo, hi)`` of critic timesteps (floats or ``[B]`` tensors), or None for the objective's own
TRange = tuple[Any, Any] | None


@dataclass(frozen=True)
class LossInputs:
    """The inputs of ``generator_loss`` and ``critic_loss``.

    ``x_gen [B, C, F, H, W]``: the generated video; ``cond``: its conditioning; ``critic``: the
    trainable critic (fake score or discriminator trunk); ``real_score``: the frozen teacher with
    its CFG (generator losses of score-distillation objectives); ``real``: real videos shaped like
    ``x_gen`` (objectives with ``requires_real_data``); ``t_range``: an interval replacing the
    objective's timestep distribution; ``generator``: the random stream of the loss's draws.
    """

    x_gen: Tensor
    cond: Conditioning
    critic: Denoiser
    real_score: Denoiser | None = None
    real: Tensor | None = None
    t_range: TRange = None
    generator: torch.Generator | None = None

    def require_real_score(self) -> Denoiser:
        """The real score, or ``ValueError`` when the paradigm passed none."""
        if self.real_score is None:
            raise ValueError("this objective needs the real score: pass real_score=...")
        return self.real_score

    def require_real(self) -> Tensor:
        """The real videos (shaped like ``x_gen``), or ``ValueError``."""
        if self.real is None:
            raise ValueError("this objective needs real videos: pass real=...")
        if self.real.shape != self.x_gen.shape:
            raise ValueError(f"real {tuple(self.real.shape)} and generated {tuple(self.x_gen.shape)} shapes differ")
        return self.real


@dataclass(frozen=True)
class NoiseDraw:
    """One loss's critic timesteps ``t`` (``[B]`` or ``[B, F]``) and Gaussian ``noise`` shaped like ``x_gen``."""

    t: Tensor
    noise: Tensor

    def noised(self, x: Tensor, noise: Tensor | None = None) -> Tensor:
        """``x`` noised to ``t`` with this draw's noise (or ``noise``): x_t = (1 - sigma) x + sigma eps."""
        return add_noise(x, self.noise if noise is None else noise, sigma_from_t(self.t))  # rectified-flow forward process
