"""Self-Forcing++'s GRPO stage (A.6, eq. 7): the few-step sampler seen as a Gaussian policy.

`sample_trajectory` / `policy_logprobs` (GRPO, A.6 eq. 7): each re-noising step of the sampler is
Gaussian, x_{k+1} ~ N((1 - sigma_{k+1}) x0_theta(x_k), sigma_{k+1}^2 I); the sampler records its
states and old log-probabilities, and the replay recomputes the log-probabilities with grad, one
block at a time, with the recorded clean blocks in the cache (no graph through the cache).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from forcing.diffusion import Conditioning, Denoiser
from forcing.diffusion.flow import sigma_from_t
from forcing.diffusion.gaussian import gaussian_kl, gaussian_logprob
from forcing.models import CausalWanModel, KVCache

from .cache import new_cache
from .loop import NoiseFn, run_blocks, write_context
from .samplers import few_step_sample


@dataclass
class Trajectory:
    """A few-step rollout with its stochastic transitions (GRPO, A.6).

    video: [B, C, F, H, W] clean blocks (on `store`); states[b]: [T, B, C, fpb, H, W], the inputs
    x_0 (the block's noise) .. x_{T-1} of block b's T steps; logp_old: [B, num_blocks, T - 1] the
    sampling policy's log N(x_{k+1}; (1 - sigma_{k+1}) x0(x_k), sigma_{k+1}^2 I); their sum over
    blocks and steps is the trajectory's log-probability (`forcing.objectives.grpo.trajectory_logprob`).
    """

    video: Tensor
    states: list[Tensor]
    logp_old: Tensor
    timesteps: list[float]
    frames_per_block: int


@torch.no_grad()
def sample_trajectory(
    model: CausalWanModel,
    context: Tensor,
    noise: NoiseFn,
    *,
    num_frames: int,
    frames_per_block: int,
    timesteps: Sequence[float],
    cache_frames: int,
    context_t: float = 0.0,
    generator: torch.Generator | None = None,
    reduce: str = "mean",
    store: torch.device | str | None = "cpu",
) -> Trajectory:
    """The inference rollout (same draws and results as `generate` with the stochastic sampler and
    a rolling cache) that also records its states and old log-probabilities."""
    steps, fpb = list(timesteps), frames_per_block
    if len(steps) < 2:
        raise ValueError("a one-step sampler has no stochastic transition to score")
    cond, denoiser = Conditioning(context), Denoiser(model)
    states: list[Tensor] = []
    logps: list[Tensor] = []

    def denoise(index: int, start: int, z: Tensor, cache: KVCache) -> Tensor:
        block_states, block_logp = [z], []

        def record(k: int, x0: Tensor, x_next: Tensor) -> None:
            sigma = float(sigma_from_t(steps[k + 1]))
            block_logp.append(gaussian_logprob(x_next, (1 - sigma) * x0, sigma, reduce))  # A.6: Gaussian step
            block_states.append(x_next)

        x0 = few_step_sample(denoiser, z, cond, steps, generator=generator, on_step=record, cache=cache, start_frame=start)
        stacked = torch.stack(block_states)
        states.append(stacked.to(store) if store is not None else stacked)
        logps.append(torch.stack(block_logp, dim=1))
        return x0

    video, _ = run_blocks(denoiser, cond, noise, range(0, num_frames, fpb), fpb, denoise,
                          lambda z: new_cache(model, z, cache_frames), context_t=context_t)
    video = [x.to(store) for x in video] if store is not None else video
    return Trajectory(torch.cat(video, dim=2), states, torch.stack(logps, dim=1), steps, fpb)


@dataclass
class BlockLogprobs:
    """Log-probabilities of one block's stochastic steps under the current policy."""

    block: int
    logp: Tensor            # [B, T - 1], with grad
    kl: Tensor | None       # [B, T - 1] KL to the reference policy (grad through the current one)


def policy_logprobs(
    model: CausalWanModel,
    context: Tensor,
    traj: Trajectory,
    *,
    cache_frames: int,
    context_t: float = 0.0,
    reduce: str = "mean",
    reference: CausalWanModel | None = None,
) -> Iterator[BlockLogprobs]:
    """Replay `traj` with the current weights, yielding each block's log-probabilities (with grad
    when grad is enabled) before moving on, so a caller can backpropagate block by block. The cache
    holds the recorded clean blocks (no graph); `reference` (frozen) gets its own cache."""
    steps, fpb = traj.timesteps, traj.frames_per_block
    cond, denoiser = Conditioning(context), Denoiser(model)
    ref = Denoiser(reference) if reference is not None else None
    cache = ref_cache = None
    for b, states in enumerate(traj.states):
        start = b * fpb
        xs = states.to(context.device)
        cache = cache if cache is not None else new_cache(model, xs[0], cache_frames)
        if ref is not None and ref_cache is None:
            ref_cache = new_cache(reference, xs[0], cache_frames)
        logps, kls = [], []
        for k in range(len(steps) - 1):
            sigma = float(sigma_from_t(steps[k + 1]))
            mean = (1 - sigma) * denoiser.x0(xs[k], steps[k], cond, cache=cache, start_frame=start)
            logps.append(gaussian_logprob(xs[k + 1], mean, sigma, reduce))  # log N(x_{k+1}; (1 - s') x0, s'^2)
            if ref is not None:
                with torch.no_grad():
                    ref_mean = (1 - sigma) * ref.x0(xs[k], steps[k], cond, cache=ref_cache, start_frame=start)
                kls.append(gaussian_kl(mean, ref_mean, sigma, reduce))
        yield BlockLogprobs(b, torch.stack(logps, dim=1), torch.stack(kls, dim=1) if kls else None)
        clean = traj.video[:, :, start : start + fpb].to(context.device)
        write_context(denoiser, clean, cond, cache, start, context_t)  # the recorded clean block's K/V
        if ref is not None:
            write_context(ref, clean, cond, ref_cache, start, context_t)
