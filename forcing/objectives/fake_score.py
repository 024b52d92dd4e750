"""Score-distillation objectives whose critic is a fake-score denoiser (DMD, SiD)."""

from __future__ import annotations

from torch import Tensor

from .base import DistributionMatching
from .flow_matching import flow_matching_loss
from .inputs import LossInputs, NoiseDraw


class ScoreDistillation(DistributionMatching):
    """Critic = fake score, trained by flow matching on detached generated samples at sampled t."""

    critic_kind = "score"

    def critic_terms(self, inputs: LossInputs, draw: NoiseDraw) -> dict[str, Tensor]:
        """Flow-matching loss of the fake score on ``sg[x_gen]`` (``real`` is unused)."""
        loss = flow_matching_loss(inputs.critic, inputs.x_gen, draw.t, draw.noise, inputs.cond)  # ||v_fake(x_t, t) - (eps - x)||^2
        return {"loss": loss}
