"""Generator rollouts of the distillation paradigms (training time).

- `self_forcing`: Self Forcing Algorithm 1. One exit step s (shared by all blocks unless given
  per block): denoising steps before s run under no_grad, step s runs with grad and its x0
  prediction is the block's output; then a no-grad re-run at the context timestep writes the
  block's clean K/V, so later blocks attend a cache without graph.
- `teacher_forcing` (TF+DMD): the same few-step loop, but the cache holds ground-truth clean
  blocks instead of the generator's own outputs.
- `diffusion_forcing` (DF+DMD, CausVid): one parallel block-causal forward over noised real
  video with an independent grid noise level per block; outputs are the x0 predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from forcing.diffusion import Conditioning, Denoiser
from forcing.diffusion.flow import add_noise, sigma_from_t
from forcing.models import CausalWanModel, KVCache

from .cache import new_cache
from .loop import run_blocks, sliced_noise
from .samplers import few_step_sample


@dataclass
class Rollout:
    """A generated video and how it was made."""

    video: Tensor                 # [B, C, F, H, W]; grad only through exit-step outputs
    exit_steps: list[int]         # per block: index into the timestep list of the grad step
    timesteps: Sequence[float]    # the few-step grid used (t values, descending)

    def t_range(self) -> tuple[float, float]:
        """(low, high) = the grid cell just below the (first block's) exit step: the critic's t
        interval for a video generated at step s (Self Forcing GAN, REFERENCE §3: [t_{s-1}, t_s] in
        the paper's ascending indexing). Exit at 1000 -> (937.5, 1000); exit at the last step
        625 -> (0, 625): the public code's `denoised_timestep_to` is the next lower grid step, 0
        after the last."""
        s = self.exit_steps[0]
        low = float(self.timesteps[s + 1]) if s + 1 < len(self.timesteps) else 0.0
        return low, float(self.timesteps[s])


def self_forcing(
    model: CausalWanModel,
    noise: Tensor,
    context: Tensor,
    *,
    frames_per_block: int,
    timesteps: Sequence[float],
    exit_steps: Sequence[int],
    cache_frames: int | None = None,
    context_t: float = 0.0,
    context_video: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Rollout:
    """Roll out all blocks of `noise` [B, C, F, H, W] (Algorithm 1).

    exit_steps: one entry per block (0-based index into `timesteps`).
    cache_frames: KV capacity in frames (training-time attention window of §3.4); None = all.
        The window counts the block itself: block [s, s + fpb) sees frames >= s + fpb - cache_frames,
        so `frames - frames_per_block` is the widest window in which the last block cannot see the
        first one.
    context_video: if given, its blocks (ground truth) are written to the cache instead of the
    generator's outputs (TF+DMD rollout).
    """
    frames = noise.shape[2]
    num_blocks = frames // frames_per_block
    if len(exit_steps) != num_blocks:
        raise ValueError(f"need one exit step per block ({num_blocks}), got {len(exit_steps)}")
    cond, denoiser = Conditioning(context), Denoiser(model)

    def denoise(index: int, start: int, z: Tensor, cache: KVCache) -> Tensor:
        # Alg. 1: steps before the exit step carry no graph; the exit step's x0 keeps it
        return few_step_sample(denoiser, z, cond, timesteps, generator=generator, exit_step=int(exit_steps[index]),
                               cache=cache, start_frame=start)

    cache = new_cache(model, noise[:, :, :frames_per_block], cache_frames or frames)
    outputs, _ = run_blocks(denoiser, cond, sliced_noise(noise), range(0, frames, frames_per_block),
                            frames_per_block, denoise, cache, context_t=context_t, context_video=context_video)
    return Rollout(torch.cat(outputs, dim=2), [int(s) for s in exit_steps], list(timesteps))


def diffusion_forcing(
    model: CausalWanModel,
    real: Tensor,
    context: Tensor,
    *,
    frames_per_block: int,
    timesteps: Sequence[float],
    local_window: int | None = None,
    generator: torch.Generator | None = None,
) -> Rollout:
    """CausVid's DF+DMD generator output: noise real video [B, C, F, H, W] to an independent grid
    level per block and predict x0 with one block-causal forward.

    local_window: attention window in frames (the §3.4 training window; same visibility rule as
    `self_forcing`'s cache of `cache_frames` frames); None = all earlier blocks.
    """
    b, _, frames = real.shape[:3]
    num_blocks = frames // frames_per_block
    idx = torch.randint(0, len(timesteps), (b, num_blocks), generator=generator, device=real.device)
    grid = torch.as_tensor(list(timesteps), device=real.device, dtype=real.dtype)
    t = grid[idx].repeat_interleave(frames_per_block, dim=1)  # [B, F]
    eps = torch.randn(real.shape, generator=generator, device=real.device, dtype=real.dtype)
    x_t = add_noise(real, eps, sigma_from_t(t))
    v = model(x_t, t, context, mode="block_causal", frames_per_block=frames_per_block, local_window=local_window)
    video = x_t - sigma_from_t(t)[:, None, :, None, None] * v  # x0 = x_t - sigma v, per frame
    return Rollout(video, [int(i) for i in idx[0].tolist()], list(timesteps))
