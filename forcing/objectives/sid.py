"""Score identity Distillation (SiD), the alternative objective of Self Forcing."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import input_gradient_loss
from .fake_score import ScoreDistillation
from .inputs import LossInputs, NoiseDraw


class SiD(ScoreDistillation):
    """SiD generator loss, mean over elements of
    ((f_real - f_fake) * (f_fake - x) + (1 - alpha) (f_real - f_fake)^2) / mean|x - f_real| (per sample).

    x_t is built from ``x_gen`` and both scores run with grad w.r.t. x_t; the gradient is taken
    w.r.t. ``x_gen`` only (:func:`~forcing.objectives.base.input_gradient_loss`), so the critic's and
    teacher's parameters get none. The normaliser is computed without grad.
    Critic: fake-score flow matching (as DMD).
    """

    def __init__(self, alpha: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def generator_terms(self, inputs: LossInputs, draw: NoiseDraw) -> dict[str, Tensor]:
        """SiD loss on the generated video ``x_gen [B, C, F, H, W]`` (``real`` is unused)."""
        critic, real_score, cond, t = inputs.critic, inputs.require_real_score(), inputs.cond, draw.t

        def sid(x_in: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
            x_t = draw.noised(x_in)  # with grad w.r.t. x_in
            f_fake = critic.x0(x_t, t, cond).double()
            f_real = real_score.x0(x_t, t, cond).double()
            x = x_in.double()
            with torch.no_grad():
                normaliser = (x - f_real).abs().mean(dim=tuple(range(1, x.dim())), keepdim=True)
            diff = f_real - f_fake
            # SiD: (r - f)^T (f - x) + (1 - alpha) ||r - f||^2, per element
            elem = diff * (f_fake - x) + (1 - self.alpha) * diff**2
            terms = {"sid_score_gap": diff.detach().abs().mean(), "sid_normaliser": normaliser.mean()}
            return torch.nan_to_num(elem / normaliser).mean(), terms

        loss, terms = input_gradient_loss(sid, inputs.x_gen)
        return {"loss": loss, **terms}
