"""The block loop of every autoregressive rollout (Self Forcing Algorithms 1 and 2).

For each block start: draw the block's noise, denoise it against the KV cache of earlier blocks
(the caller's `BlockFn`: a sampler call, with or without an exit step), then write the block's
context K/V by re-running the finished block at `context_t` (the generator's own output, or the
ground truth for a teacher-forced rollout; nothing for the noisy-context ablation, whose slots
keep the K/V of the block's last denoising forward). Inference, training rollouts, the long
rollouts of Self-Forcing++ and its GRPO trajectories are all this loop with another `BlockFn`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from forcing.diffusion import Conditioning, Denoiser
from forcing.models import KVCache

#: noise of the block [start, start + frames): (start, frames) -> [B, C, frames, H, W]
NoiseFn = Callable[[int, int], Tensor]
#: denoise one block against the cache: (block index, start frame, noise, cache) -> clean block
BlockFn = Callable[[int, int, Tensor, KVCache], Tensor]
#: called after every finished block: (block index, start frame, block, cache)
AfterBlock = Callable[[int, int, Tensor, KVCache], None]


def sliced_noise(noise: Tensor) -> NoiseFn:
    """Blocks of a pre-drawn noise tensor [B, C, F, H, W]."""
    return lambda start, frames: noise[:, :, start : start + frames]


def drawn_noise(rngs: Sequence[torch.Generator], shape: tuple[int, int, int], dtype: torch.dtype = torch.float32) -> NoiseFn:
    """Fresh noise per block, sample b from rngs[b] ((C, H, W) = shape); blocks must be asked for in
    order. Nothing is pre-allocated, so memory does not grow with the rollout."""
    c, h, w = shape

    def draw(start: int, frames: int) -> Tensor:
        return torch.stack([torch.randn((c, frames, h, w), generator=g, device=g.device, dtype=dtype) for g in rngs])

    return draw


@torch.no_grad()
def write_context(
    denoiser: Denoiser, x: Tensor, cond: Conditioning, cache: KVCache, start: int, context_t: float,
    noisy_context: bool = False,
) -> None:
    """Alg. 1/2: re-run the finished block x at `context_t` to write its clean K/V. With
    `noisy_context` nothing runs: the slots keep the K/V of the block's last denoising forward."""
    if noisy_context:
        return
    t_ctx = torch.full((x.shape[0],), float(context_t), device=x.device)
    denoiser.velocity(x.detach(), t_ctx, cond, cache=cache, start_frame=start)


def run_blocks(
    denoiser: Denoiser,
    cond: Conditioning,
    noise: NoiseFn,
    starts: Sequence[int],
    frames_per_block: int,
    denoise: BlockFn,
    cache: KVCache | Callable[[Tensor], KVCache],
    *,
    context_t: float = 0.0,
    noisy_context: bool = False,
    context_video: Tensor | None = None,
    after_block: AfterBlock | None = None,
    keep_blocks: bool = True,
) -> tuple[list[Tensor], KVCache | None]:
    """Generate the blocks starting at `starts`, in order (the loop of Algorithms 1 and 2).

    cache: the KV cache to read and write, or a factory called with the first block's noise.
    context_video: if given, its blocks (ground truth) are written to the cache instead of the
        generated ones (teacher-forced rollouts).
    keep_blocks: False returns no blocks (a long no-grad prefix whose memory must not grow with it).
    Returns (blocks, cache); the cache is None if a factory was given and no block ran.
    """
    blocks: list[Tensor] = []
    current = cache if isinstance(cache, KVCache) else None
    for index, start in enumerate(starts):
        z = noise(start, frames_per_block)
        if current is None:
            current = cache(z)
        x = denoise(index, start, z, current)
        clean = x if context_video is None else context_video[:, :, start : start + frames_per_block]
        write_context(denoiser, clean, cond, current, start, context_t, noisy_context)  # Alg. 1/2: clean K/V
        if keep_blocks:
            blocks.append(x)
        if after_block is not None:
            after_block(index, start, x, current)
    return blocks, current
