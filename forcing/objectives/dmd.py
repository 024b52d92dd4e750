"""Distribution Matching Distillation (DMD / DMD2), as Self Forcing trains its generator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .fake_score import ScoreDistillation
from .inputs import LossInputs, NoiseDraw


def dmd_gradient(x: Tensor, f_fake: Tensor, f_real: Tensor) -> tuple[Tensor, Tensor]:
    """Normalised reverse-KL gradient (f_fake - f_real) / mean|x - f_real| per sample, float64.

    Returns ``(grad, normaliser [B, 1, 1, 1, 1])``; 0/0 entries are zeroed.
    """
    x, f_fake, f_real = x.double(), f_fake.double(), f_real.double()
    normaliser = (x - f_real).abs().mean(dim=tuple(range(1, x.dim())), keepdim=True)  # DMD eq. 8 weight
    grad = torch.nan_to_num((f_fake - f_real) / normaliser)  # grad of KL(p_fake || p_real) in x0 space
    return grad, normaliser


class DMD(ScoreDistillation):
    """DMD generator loss 0.5 ||x - sg[x - grad]||^2 (mean over elements, float64), so that
    d loss / d x = grad / numel with grad = (f_fake(x_t) - f_real(x_t)) / mean|x - f_real(x_t)|.

    Both scores run under ``no_grad`` at one t per sample (shared over frames unless ``per_frame``);
    the real score's CFG is set on its :class:`Denoiser`. Critic: fake-score flow matching.
    """

    def generator_terms(self, inputs: LossInputs, draw: NoiseDraw) -> dict[str, Tensor]:
        """DMD loss on the generated video ``x_gen [B, C, F, H, W]`` (``real`` is unused)."""
        x_gen, t = inputs.x_gen, draw.t
        with torch.no_grad():
            x_t = draw.noised(x_gen.detach())
            f_fake = inputs.critic.x0(x_t, t, inputs.cond)
            f_real = inputs.require_real_score().x0(x_t, t, inputs.cond)
            grad, normaliser = dmd_gradient(x_gen.detach(), f_fake, f_real)
        x = x_gen.double()
        loss = 0.5 * F.mse_loss(x, (x - grad).detach(), reduction="mean")  # 0.5 ||x - sg[x - grad]||^2
        return {"loss": loss, "dmd_grad_abs": grad.abs().mean(), "dmd_normaliser": normaliser.mean()}
