"""Autoregressive generation with the KV cache.

`generate` is Self Forcing's Algorithm 2 (inference): blocks are denoised one after another
against a KV cache of earlier, clean blocks; after a block is finished its clean latents are
re-run at the context timestep to write their K/V; the cache evicts its oldest frames when full
(rolling window), sink frames stay. Many-step (Euler, with CFG: TF/DF/teacher-style) and few-step
(x0 prediction then re-noising: distilled generators) samplers share the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from forcing.diffusion import Conditioning, Denoiser
from forcing.diffusion.flow import add_noise, sigma_from_t
from forcing.models import CausalWanModel, KVCache


def tokens_per_frame(model: CausalWanModel, height: int, width: int) -> int:
    """Tokens of one latent frame after patchifying."""
    _, ph, pw = model.config.patch_size
    return (height // ph) * (width // pw)


def denoise_block(
    denoiser: Denoiser,
    x: Tensor,
    cond: Conditioning,
    timesteps: Sequence[float],
    *,
    stochastic: bool,
    generator: torch.Generator | None = None,
    **forward: object,
) -> Tensor:
    """Denoise one block x [B, C, f, H, W] from timesteps[0] to 0.

    stochastic=False: Euler steps of the probability-flow ODE, x <- x + (sigma' - sigma) v.
    stochastic=True: few-step sampler: predict x0, re-noise to the next sigma with fresh noise
    (REFERENCE §2); the last step returns the x0 prediction.
    """
    batch = x.shape[0]
    for i, t in enumerate(timesteps):
        t_vec = torch.full((batch,), float(t), device=x.device)
        sigma = sigma_from_t(t_vec)
        v = denoiser.velocity(x, t_vec, cond, **forward)
        t_next = float(timesteps[i + 1]) if i + 1 < len(timesteps) else 0.0
        sigma_next = sigma_from_t(torch.full_like(t_vec, t_next))
        if stochastic:
            x0 = x - sigma.view(-1, 1, 1, 1, 1) * v  # x0 = x_t - sigma v
            if t_next <= 0:
                return x0
            noise = torch.randn(x0.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = add_noise(x0, noise, sigma_next)
        else:
            x = x + (sigma_next - sigma).view(-1, 1, 1, 1, 1) * v  # Euler step of dx/dsigma = v
    return x


@torch.no_grad()
def generate(
    model: CausalWanModel,
    noise: Tensor,
    cond: Conditioning,
    *,
    frames_per_block: int,
    timesteps: Sequence[float],
    stochastic: bool,
    guidance_scale: float = 1.0,
    cache_frames: int | None = None,
    sink_frames: int = 0,
    context_t: float = 0.0,
    generator: torch.Generator | None = None,
    on_block: Callable[[int, Tensor], None] | None = None,
) -> Tensor:
    """Generate all frames of `noise` [B, C, F, H, W] block by block (Algorithm 2).

    cache_frames: KV capacity in frames (window + sink); None keeps the whole video.
    context_t: timestep at which finished blocks are re-run to write their K/V (0 = clean).
    on_block(index, block) is called with every finished block (streaming consumers).
    """
    b, _, frames, height, width = noise.shape
    if frames % frames_per_block:
        raise ValueError(f"{frames} frames do not divide into blocks of {frames_per_block}")
    denoiser = Denoiser(model, guidance_scale=guidance_scale)
    cfg_batch = b * (2 if guidance_scale != 1.0 and cond.null_context is not None else 1)
    capacity = cache_frames if cache_frames is not None else frames
    cache = KVCache.for_model(
        model,
        batch_size=cfg_batch,
        capacity_frames=capacity,
        tokens_per_frame=tokens_per_frame(model, height, width),
        sink_frames=sink_frames,
        dtype=next(model.parameters()).dtype,  # the cache holds K/V in the model's dtype
        device=noise.device,
    )
    blocks = []
    for index, start in enumerate(range(0, frames, frames_per_block)):
        x = noise[:, :, start : start + frames_per_block]
        x = denoise_block(
            denoiser, x, cond, timesteps, stochastic=stochastic, generator=generator, cache=cache, start_frame=start
        )
        t_ctx = torch.full((b,), float(context_t), device=x.device)
        denoiser.velocity(x, t_ctx, cond, cache=cache, start_frame=start)  # write the clean block's K/V
        blocks.append(x)
        if on_block is not None:
            on_block(index, x)
    return torch.cat(blocks, dim=2)
