"""Relativistic GAN objective (R3GAN pairing with finite-difference R1/R2), Self Forcing's GAN variant."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..diffusion.flow import add_noise, sigma_from_t
from ..diffusion.guidance import Conditioning, Denoiser
from .base import DistributionMatching, TRange, input_gradient_loss, logged
from .discriminator import DiscriminatorHeads, default_tap_blocks


def relativistic_loss(d_preferred: Tensor, d_other: Tensor) -> Tensor:
    """Relativistic pairing loss mean softplus(-(D(a) - D(b))): low when D scores ``a`` above ``b``.

    D loss = relativistic_loss(D(real), D(fake)); G loss = relativistic_loss(D(fake), D(real)).
    """
    return F.softplus(-(d_preferred.float() - d_other.float())).mean()  # R3GAN eq. (RpGAN)


def finite_difference_penalty(d_x: Tensor, d_x_perturbed: Tensor) -> Tensor:
    """Approximate R1/R2: mean ||D(x) - D(x + sigma eps)||^2 (no division by sigma)."""
    return ((d_x.float() - d_x_perturbed.float()) ** 2).mean()  # finite-difference gradient penalty


class GANObjective(DistributionMatching):
    """Discriminator = critic trunk (called with ``return_hidden=tap_blocks``) + :class:`DiscriminatorHeads`.

    Real and fake are noised to the same per-sample critic t (from ``t_range`` when the paradigm
    passes the exit step's interval). Critic loss = relativistic D loss + r_lambda L_reg with
    L_reg = 1/2 (R1 + R2) (Self Forcing eq. 5, lambda 30), R1/R2
    by finite differences with perturbation ``r_sigma`` on noisy real / fake; generator loss =
    relativistic G loss with the gradient taken w.r.t. the generated video only. The heads are this
    module's parameters: put ``objective.parameters()`` in the critic optimiser. The public code divides the finite
    difference by sigma (sigma 0.01); here it does not (paper: sigma 0.05, lambda 30).
    """

    requires_real_data = True
    critic_kind = "discriminator"

    def __init__(
        self,
        dim: int,
        tap_blocks: Sequence[int] | None = None,
        num_layers: int = 30,
        num_registers: int = 4,
        num_heads: int | None = None,
        head_hidden: int | None = None,
        r_sigma: float = 0.05,
        r_lambda: float = 30.0,
        concat_forwards: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.tap_blocks = tuple(tap_blocks) if tap_blocks is not None else default_tap_blocks(num_layers)
        self.heads = DiscriminatorHeads(dim, len(self.tap_blocks), num_registers, num_heads, head_hidden)
        self.r_sigma = float(r_sigma)
        self.r_lambda = float(r_lambda)
        self.concat_forwards = bool(concat_forwards)

    def discriminate(
        self, critic: Denoiser, xs: Sequence[Tensor], t: Tensor, cond: Conditioning
    ) -> list[Tensor]:
        """Logits ``[B]`` for each noisy batch in ``xs`` (all at timestep ``t``), one trunk forward if concat."""
        if not self.concat_forwards or len(xs) == 1:
            return [self.heads(critic.velocity_and_hidden(x, t, cond, self.tap_blocks)[1]) for x in xs]
        n = len(xs)
        _, hidden = critic.velocity_and_hidden(
            torch.cat(list(xs), 0), torch.cat([t] * n, 0), cond.repeat(n), self.tap_blocks
        )
        return list(self.heads(hidden).chunk(n, dim=0))

    def _noisy_pair(
        self, x_gen: Tensor, real: Tensor, t_range: TRange, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        t = self.sample_t(x_gen, t_range, generator)
        sigma = sigma_from_t(t)
        fake_t = add_noise(x_gen, self.noise_like(x_gen, generator), sigma)  # x_t = (1 - sigma) x + sigma eps
        real_t = add_noise(real, self.noise_like(real, generator), sigma)
        return t, fake_t, real_t

    def generator_loss(
        self,
        x_gen: Tensor,
        cond: Conditioning,
        *,
        real_score: Denoiser | None = None,
        critic: Denoiser,
        real: Tensor | None = None,
        t_range: TRange = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Relativistic G loss softplus(-(D(fake_t) - D(real_t))); ``real_score`` is unused."""
        real = self.check_real(real, x_gen).detach()
        t, fake_t, real_t = self._noisy_pair(x_gen, real, t_range, generator)
        with torch.no_grad():
            (d_real,) = self.discriminate(critic, [real_t], t, cond)

        def g_loss(fake_in: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
            (d_fake,) = self.discriminate(critic, [fake_in], t, cond)
            return relativistic_loss(d_fake, d_real), {"d_fake": d_fake.detach().mean()}

        # gradient to x_gen only: trunk and heads get none
        loss, terms = input_gradient_loss(g_loss, fake_t)
        return logged({"loss": loss, "d_real": d_real.mean(), **terms, "generator_t": t.float().mean()})

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
        """Relativistic D loss softplus(-(D(real_t) - D(fake_t))) + r_lambda * 1/2 (R1 + R2) (Self Forcing eq. 5)."""
        x = x_gen.detach()
        real = self.check_real(real, x).detach()
        t, fake_t, real_t = self._noisy_pair(x, real, t_range, generator)
        real_p = real_t + self.r_sigma * self.noise_like(real_t, generator)  # x_t + sigma eps
        fake_p = fake_t + self.r_sigma * self.noise_like(fake_t, generator)
        d_real, d_fake, d_real_p, d_fake_p = self.discriminate(
            critic, [real_t, fake_t, real_p, fake_p], t, cond
        )
        d_loss = relativistic_loss(d_real, d_fake)
        r1 = finite_difference_penalty(d_real, d_real_p)
        r2 = finite_difference_penalty(d_fake, d_fake_p)
        r_reg = 0.5 * (r1 + r2)  # Self Forcing eq. 5: L_reg = 1/2 (||D(x_t) - D(x_t + sigma eps)||^2 real + fake)
        loss = d_loss + self.r_lambda * r_reg
        return logged(
            {
                "loss": loss,
                "d_loss": d_loss,
                "r1": r1,
                "r2": r2,
                "r_reg": r_reg,
                "d_real": d_real.mean(),
                "d_fake": d_fake.mean(),
                "critic_t": t.float().mean(),
            }
        )
