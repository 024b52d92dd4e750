"""Score-distillation objectives whose critic is a fake-score denoiser (DMD, SiD)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..diffusion.guidance import Conditioning, Denoiser
from .base import DistributionMatching, TRange, logged
from .flow_matching import flow_matching_loss


class ScoreDistillation(DistributionMatching):
    """Critic = fake score, trained by flow matching on detached generated samples at sampled t."""

    critic_kind = "score"

    def critic_loss(
        self,
        x_gen: Tensor,
        cond: Conditioning,
        *,
        critic: Denoiser,
        real: Tensor | None = None,
        t_range: TRange = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Flow-matching loss of the fake score on ``sg[x_gen]`` (``real`` is unused)."""
        x = x_gen.detach()
        t = self.sample_t(x, t_range, generator)
        noise = self.noise_like(x, generator)
        loss = flow_matching_loss(critic, x, t, noise, cond)  # ||v_fake(x_t, t) - (eps - x)||^2
        return logged({"loss": loss, "critic_t": t.float().mean()})
