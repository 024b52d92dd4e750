"""The bidirectional teacher of the shapes world: full attention, flow matching, prompt dropout
(so CFG works), many-step Euler sampler with CFG. It is the real score and the critic's
initialisation of the distillation paradigms, and the source of ODE-init pairs."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from forcing.diffusion import Denoiser
from forcing.diffusion.schedule import euler_timesteps
from forcing.rollout import euler_sample
from lightning_modules.denoising import DenoisingModule


class BidirectionalDiffusion(DenoisingModule):
    """Full-attention flow-matching video model (one timestep per clip)."""

    mode = "bidirectional"
    can_stream = False

    def block_timesteps(self, rngs: list[torch.Generator]) -> Tensor:
        """One shifted timestep per clip, expanded to frames: [B, F]."""
        t = super().block_timesteps(rngs)
        return t[:, :1].expand_as(t)

    def forward_kwargs(self, x0: Tensor) -> dict[str, Any]:
        """Full attention."""
        return {"mode": "bidirectional"}

    @torch.no_grad()
    def sample(self, prompts: list[str], num_frames: int, seed: int = 0) -> Tensor:
        """Many-step Euler sampling of the whole clip with CFG."""
        gen = torch.Generator(device=self.device).manual_seed(seed)
        noise = torch.randn((len(prompts), *self.latent_shape(num_frames)), generator=gen, device=self.device)
        denoiser = Denoiser(self.sampling_generator(), guidance_scale=float(self.p.guidance_scale), mode="bidirectional")
        steps = euler_timesteps(int(self.p.sample_steps), shift=float(self.p.sample_shift))
        return euler_sample(denoiser, noise, self.condition(prompts), steps)
