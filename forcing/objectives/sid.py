"""Score identity Distillation (SiD), the alternative objective of Self Forcing."""

from __future__ import annotations

import torch
from torch import Tensor

from ..diffusion.flow import add_noise, sigma_from_t
from ..diffusion.guidance import Conditioning, Denoiser
from .base import TRange, input_gradient_loss, logged
from .fake_score import ScoreDistillation


class SiD(ScoreDistillation):
    """SiD generator loss, mean over elements of
    ((f_real - f_fake) * (f_fake - x) + (1 - alpha) (f_real - f_fake)^2) / mean|x - f_real| (per sample).

    x_t is built from ``x_gen`` and both scores run with grad w.r.t. x_t; the gradient is taken
    w.r.t. ``x_gen`` only (:func:`~forcing.objectives.base.input_gradient_loss`), so the critic's and
    teacher's parameters get none. The normaliser is computed without grad.
    Critic: fake-score flow matching (as DMD).
    """

    def __init__(self, alpha: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def generator_loss(
        self,
        x_gen: Tensor,
        cond: Conditioning,
        *,
        real_score: Denoiser,
        critic: Denoiser,
        real: Tensor | None = None,
        t_range: TRange = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """SiD loss on the generated video ``x_gen [B, C, F, H, W]`` (``real`` is unused)."""
        t = self.sample_t(x_gen, t_range, generator)
        noise = self.noise_like(x_gen, generator)

        def sid(x_in: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
            x_t = add_noise(x_in, noise, sigma_from_t(t))  # with grad: x_t = (1 - sigma) x + sigma eps
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

        loss, terms = input_gradient_loss(sid, x_gen)
        return logged(
            {
                "loss": loss,
                **terms,
                "generator_t": t.float().mean(),
            }
        )
