"""Relativistic GAN objective (R3GAN pairing with finite-difference R1/R2), Self Forcing's GAN variant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..diffusion.guidance import Conditioning, Denoiser
from .base import DistributionMatching, input_gradient_loss
from .discriminator import DiscriminatorHeads, default_tap_blocks
from .inputs import LossInputs, NoiseDraw


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
    module's parameters, built for the critic network by :meth:`bind_critic`: put
    ``objective.parameters()`` in the critic optimiser. The public code divides the finite
    difference by sigma (sigma 0.01); here it does not (paper: sigma 0.05, lambda 30).
    """

    requires_real_data = True
    critic_kind = "discriminator"

    def __init__(
        self,
        tap_blocks: Sequence[int] | None = None,
        num_registers: int = 4,
        num_heads: int | None = None,
        head_hidden: int | None = None,
        r_sigma: float = 0.05,
        r_lambda: float = 30.0,
        concat_forwards: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.tap_blocks: tuple[int, ...] | None = tuple(tap_blocks) if tap_blocks is not None else None
        self.num_registers = int(num_registers)
        self.num_heads = num_heads
        self.head_hidden = head_hidden
        self.heads: DiscriminatorHeads | None = None
        self.r_sigma = float(r_sigma)
        self.r_lambda = float(r_lambda)
        self.concat_forwards = bool(concat_forwards)

    def bind_critic(self, critic: nn.Module) -> GANObjective:
        """Build the heads for the critic trunk ``critic`` (a backbone with ``config.dim`` and
        ``config.num_layers``), tapping ``tap_blocks`` (default: :func:`default_tap_blocks`)."""
        config = critic.config
        if self.tap_blocks is None:
            self.tap_blocks = default_tap_blocks(int(config.num_layers))
        self.heads = DiscriminatorHeads(
            int(config.dim), len(self.tap_blocks), self.num_registers, self.num_heads, self.head_hidden
        )
        return self

    def discriminate(
        self, critic: Denoiser, xs: Sequence[Tensor], t: Tensor, cond: Conditioning
    ) -> list[Tensor]:
        """Logits ``[B]`` for each noisy batch in ``xs`` (all at timestep ``t``), one trunk forward if concat."""
        if self.heads is None:
            raise RuntimeError("GANObjective has no heads yet: call bind_critic(critic_network) first")
        if not self.concat_forwards or len(xs) == 1:
            return [self.heads(critic.velocity_and_hidden(x, t, cond, self.tap_blocks)[1]) for x in xs]
        n = len(xs)
        _, hidden = critic.velocity_and_hidden(
            torch.cat(list(xs), 0), torch.cat([t] * n, 0), cond.repeat(n), self.tap_blocks
        )
        return list(self.heads(hidden).chunk(n, dim=0))

    def noisy_pair(self, inputs: LossInputs, draw: NoiseDraw) -> tuple[Tensor, Tensor]:
        """``(fake_t, real_t)``: ``x_gen`` with the drawn noise and the real videos with noise of their
        own (drawn now), both at the drawn ``t``."""
        real = inputs.require_real().detach()
        return draw.noised(inputs.x_gen), draw.noised(real, self.noise_like(real, inputs.generator))

    def generator_terms(self, inputs: LossInputs, draw: NoiseDraw) -> dict[str, Tensor]:
        """Relativistic G loss softplus(-(D(fake_t) - D(real_t))); ``real_score`` is unused."""
        critic, cond, t = inputs.critic, inputs.cond, draw.t
        fake_t, real_t = self.noisy_pair(inputs, draw)
        with torch.no_grad():
            (d_real,) = self.discriminate(critic, [real_t], t, cond)

        def g_loss(fake_in: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
            (d_fake,) = self.discriminate(critic, [fake_in], t, cond)
            return relativistic_loss(d_fake, d_real), {"d_fake": d_fake.detach().mean()}

        # gradient to x_gen only: trunk and heads get none
        loss, terms = input_gradient_loss(g_loss, fake_t)
        return {"loss": loss, "d_real": d_real.mean(), **terms}

    def critic_terms(self, inputs: LossInputs, draw: NoiseDraw) -> dict[str, Tensor]:
        """Relativistic D loss softplus(-(D(real_t) - D(fake_t))) + r_lambda * 1/2 (R1 + R2) (Self Forcing eq. 5)."""
        fake_t, real_t = self.noisy_pair(inputs, draw)
        real_p = real_t + self.r_sigma * self.noise_like(real_t, inputs.generator)  # x_t + sigma eps
        fake_p = fake_t + self.r_sigma * self.noise_like(fake_t, inputs.generator)
        d_real, d_fake, d_real_p, d_fake_p = self.discriminate(
            inputs.critic, [real_t, fake_t, real_p, fake_p], draw.t, inputs.cond
        )
        d_loss = relativistic_loss(d_real, d_fake)
        r1 = finite_difference_penalty(d_real, d_real_p)
        r2 = finite_difference_penalty(d_fake, d_fake_p)
        r_reg = 0.5 * (r1 + r2)  # Self Forcing eq. 5: L_reg = 1/2 (||D(x_t) - D(x_t + sigma eps)||^2 real + fake)
        loss = d_loss + self.r_lambda * r_reg
        return {
            "loss": loss,
            "d_loss": d_loss,
            "r1": r1,
            "r2": r2,
            "r_reg": r_reg,
            "d_real": d_real.mean(),
            "d_fake": d_fake.mean(),
        }
