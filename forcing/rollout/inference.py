"""Streaming inference (Self Forcing Algorithm 2): blocks are denoised one after another against a
KV cache of earlier, clean blocks; after a block is finished its clean latents are re-run at the
context timestep to write their K/V; the cache evicts its oldest frames when full (rolling window),
sink frames stay. Few-step (x0 prediction then re-noising: distilled generators) and many-step
(Euler with CFG: TF / DF / teacher-style models) samplers both run in the one block loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from forcing.diffusion import Conditioning, Denoiser
from forcing.models import CausalWanModel, KVCache

from .cache import new_cache
from .loop import NoiseFn, run_blocks, sliced_noise
from .samplers import sample


@torch.no_grad()
def stream_rollout(
    model: CausalWanModel,
    cond: Conditioning,
    noise: NoiseFn,
    *,
    num_frames: int,
    frames_per_block: int,
    timesteps: Sequence[float],
    cache_frames: int,
    stochastic: bool = True,
    guidance_scale: float = 1.0,
    sink_frames: int = 0,
    context_t: float = 0.0,
    noisy_context: bool = False,
    generator: torch.Generator | None = None,
    on_block: Callable[[int, Tensor], None] | None = None,
) -> Tensor:
    """Stream `num_frames` frames block by block (Algorithm 2) and return them [B, C, F, H, W].

    noise: the noise of each block (`sliced_noise`, `drawn_noise`); cache_frames: KV capacity in
    frames (window + sink); context_t: timestep at which finished blocks are re-run to write their
    K/V (0 = clean); noisy_context: the ablation whose cache keeps each block's last noisy K/V.
    on_block(index, block) is called with every finished block (streaming consumers).
    """
    denoiser = Denoiser(model, guidance_scale=guidance_scale)
    guided = guidance_scale != 1.0 and cond.null_context is not None

    def make_cache(z: Tensor) -> KVCache:  # a batched-CFG denoiser runs [cond; uncond] rows
        return new_cache(model, z, cache_frames, rows=z.shape[0] * (2 if guided else 1), sink_frames=sink_frames)

    def denoise(index: int, start: int, z: Tensor, cache: KVCache) -> Tensor:
        return sample(denoiser, z, cond, timesteps, stochastic=stochastic, generator=generator,
                      cache=cache, start_frame=start)

    blocks, _ = run_blocks(
        denoiser, cond, noise, range(0, num_frames, frames_per_block), frames_per_block, denoise, make_cache,
        context_t=context_t, noisy_context=noisy_context,
        after_block=None if on_block is None else lambda index, start, x, cache: on_block(index, x),
    )
    return torch.cat(blocks, dim=2)


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
    """Generate all frames of `noise` [B, C, F, H, W] block by block (Algorithm 2); cache_frames
    None keeps the whole video. See `stream_rollout` for the other arguments."""
    frames = noise.shape[2]
    if frames % frames_per_block:
        raise ValueError(f"{frames} frames do not divide into blocks of {frames_per_block}")
    return stream_rollout(
        model, cond, sliced_noise(noise), num_frames=frames, frames_per_block=frames_per_block,
        timesteps=timesteps, cache_frames=frames if cache_frames is None else cache_frames,
        stochastic=stochastic, guidance_scale=guidance_scale, sink_frames=sink_frames, context_t=context_t,
        generator=generator, on_block=on_block,
    )
