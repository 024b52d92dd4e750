"""Self-Forcing++ rollouts (REFERENCE §3): long student rollouts with a rolling KV cache, the
training window, and the few-step sampler seen as a Gaussian policy (GRPO).

`window_rollout` (extended DMD, eq. 2). The student is rolled out exactly as at inference
(Algorithm 2: `forcing.rollout.denoise_block` plus the context re-run, a rolling cache of
`cache_frames` frames, no sink, absolute RoPE positions) up to a window of K frames that starts at
a block boundary; the window is then re-noised (backward noise initialisation) and denoised again
by the student, block by block, against the cache the rollout left behind, so the window is
conditioned on the long rollout's history. Inside the window the Self Forcing rule holds: steps
before a block's exit step run under no_grad, the exit step runs with grad and its x0 prediction
is the block's output, and a no-grad re-run at `context_t` writes the block's clean K/V. Everything
before the window runs under no_grad, and frames after the window are never generated (they
cannot influence it, and the window start is drawn independently of the content, so this equals
sampling the window from a finished N-frame rollout). Memory is the fixed-size cache plus the
window: nothing grows with N unless `keep_history` keeps the earlier frames (on CPU).

Backward noise initialisation (Self-Forcing++ eq. 1, Alg. 1 line 4), grid t_0 > t_1 > ... > t_{T-1}
(the paper's {t_1..t_T}): the window's clean frames x0 (the rollout's own window) are re-noised to
the grid point j = `noise_step`, x_t = (1 - sigma(t_j)) x0 + sigma(t_j) eps with fresh eps, and each
window block then runs the grid steps j..T-1 with the exit rule. The caller draws j, its own draw,
independent of the exit steps (`SelfForcingPP.draw_noise_step`: uniform over the grid, or 0 for
``backward_noise: first``); an exit step s < j (uniform-exit ablation) is clamped to j, the first
step the block runs. With sigma(t_j) = 1 (j = 0 on the default grid) x_t = eps whatever the clean
frames: the block starts from its own rollout noise and the window is exactly the inference
rollout continued with grad at the exit step (the clean window is not computed). The clean window
comes from continuing the inference rollout from a copy of the cache; the window pass then
restarts from the cache as it was at the window start.

Context cache (`noisy_context`): by default a finished block is re-run at `context_t` to write its
clean K/V (Alg. 1/2). `noisy_context=True` is the ablation whose cache holds noisy K/V: no re-run,
the block's slots keep the K/V its last denoising forward wrote (the noisy input of its last step,
at that step's t), in the rollout before the window, in the clean window and in the window pass;
`stream_rollout` is the matching inference rollout.

`sample_trajectory` / `policy_logprobs` (GRPO, A.6 eq. 7): each re-noising step of the sampler is
Gaussian, x_{k+1} ~ N((1 - sigma_{k+1}) x0_theta(x_k), sigma_{k+1}^2 I); the sampler records its
states and old log-probabilities, and the replay recomputes the log-probabilities with grad, one
block at a time, with the recorded clean blocks in the cache (no graph through the cache).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from forcing.diffusion import Conditioning, Denoiser, few_step_sample
from forcing.diffusion.flow import add_noise, sigma_from_t
from forcing.models import CausalWanModel, KVCache
from forcing.objectives.grpo import gaussian_kl, gaussian_logprob
from forcing.rollout import denoise_block, tokens_per_frame
from forcing.rollout_train import Rollout

WINDOW_SAMPLING = ("uniform", "beta")
#: grid: t drawn uniformly from the few-step grid (eq. 1); first: always t_0 (sigma 1 on the default grid)
BACKWARD_NOISE = ("grid", "first")

#: noise of the block [start, start + frames): (start, frames) -> [B, C, frames, H, W]
NoiseFn = Callable[[int, int], Tensor]
#: called with (start_frame, cache) after every block written by the rollout and by the window pass
BlockHook = Callable[[int, KVCache], None]


# ---------------------------------------------------------------------- noise sources
def sliced_noise(noise: Tensor) -> NoiseFn:
    """Blocks of a pre-drawn noise tensor [B, C, F, H, W] (inference parity, tests)."""
    return lambda start, frames: noise[:, :, start : start + frames]


def drawn_noise(rngs: Sequence[torch.Generator], shape: tuple[int, int, int], dtype: torch.dtype = torch.float32) -> NoiseFn:
    """Fresh noise per block, sample b from rngs[b] ((C, H, W) = shape); blocks must be asked for in
    order. Nothing is pre-allocated, so memory does not grow with the rollout."""
    c, h, w = shape

    def draw(start: int, frames: int) -> Tensor:
        return torch.stack([torch.randn((c, frames, h, w), generator=g, device=g.device, dtype=dtype) for g in rngs])

    return draw


# ---------------------------------------------------------------------- window and length
def window_starts(num_frames: int, window_frames: int, frames_per_block: int) -> list[int]:
    """Every block-aligned start of a window of `window_frames` frames inside `num_frames` frames."""
    if window_frames > num_frames or num_frames % frames_per_block or window_frames % frames_per_block:
        raise ValueError(f"no block-aligned window of {window_frames} in {num_frames} frames "
                         f"(blocks of {frames_per_block})")
    return list(range(0, num_frames - window_frames + 1, frames_per_block))


def sample_window_start(
    num_frames: int, window_frames: int, frames_per_block: int, mode: str = "uniform",
    generator: torch.Generator | None = None,
) -> int:
    """Window start: uniform over the block-aligned starts, or ``beta``: u ~ Beta(1, 2) (density
    2 (1 - u), biased to early windows) mapped to the start index floor(u n)."""
    if mode not in WINDOW_SAMPLING:
        raise ValueError(f"window sampling {mode!r} is not one of {WINDOW_SAMPLING}")
    starts = window_starts(num_frames, window_frames, frames_per_block)
    device = generator.device if generator is not None else None
    u = float(torch.rand((), generator=generator, device=device, dtype=torch.float64))
    if mode == "beta":
        u = 1.0 - math.sqrt(1.0 - u)  # inverse CDF of Beta(1, 2): F(u) = 1 - (1 - u)^2
    return starts[min(int(u * len(starts)), len(starts) - 1)]


def rollout_frames_at(
    iteration: int, final: int, *, start: int | None = None, steps: int = 0, frames_per_block: int = 1,
    min_frames: int = 1,
) -> int:
    """Rollout length N at `iteration`: linear from `start` (iteration 0) to `final` (iteration >=
    `steps`), floored to whole blocks and at least `min_frames`; constant `final` without a schedule."""
    if start is None or steps <= 0:
        n = float(final)
    else:
        n = start + min(1.0, max(iteration, 0) / steps) * (final - start)
    n = int(n) // frames_per_block * frames_per_block
    return max(n, min_frames)


# ---------------------------------------------------------------------- the window rollout
@dataclass
class WindowRollout(Rollout):
    """The window of a long rollout (``video``: the student's window output, grad at exit steps;
    ``exit_steps``: the steps that ran with grad, after clamping to ``noise_step``)."""

    window_start: int = 0           # first frame of the window in the rollout
    num_frames: int = 0             # N: length of the rollout the window was drawn from
    noise_step: int = 0             # grid index j the window was re-noised to (eq. 1: t = t_j)
    inputs: Tensor | None = None    # [B, C, K, H, W] the window's backward-noise-initialised inputs
    clean: Tensor | None = None     # [B, C, K, H, W] the rollout's own clean window (when computed)
    history: Tensor | None = None   # [B, C, window_start, H, W] on CPU (keep_history only)


def new_cache(model: CausalWanModel, like: Tensor, cache_frames: int) -> KVCache:
    """The rolling cache of `generate`: capacity `cache_frames`, no sink, absolute positions."""
    return KVCache.for_model(
        model, batch_size=like.shape[0], capacity_frames=cache_frames,
        tokens_per_frame=tokens_per_frame(model, like.shape[-2], like.shape[-1]),
        dtype=like.dtype, device=like.device,
    )


def copy_cache(cache: KVCache) -> KVCache:
    """An independent copy of a cache (buffers cloned, bookkeeping copied)."""
    return dataclasses.replace(
        cache, keys=[k.clone() for k in cache.keys], values=[v.clone() for v in cache.values],
        slot_frames=list(cache.slot_frames), cross_keys=list(cache.cross_keys),
        cross_values=list(cache.cross_values),
    )


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


@torch.no_grad()
def inference_block(
    denoiser: Denoiser, z: Tensor, cond: Conditioning, timesteps: Sequence[float], cache: KVCache, start: int,
    context_t: float, generator: torch.Generator | None, noisy_context: bool = False,
) -> Tensor:
    """One block exactly as `forcing.rollout.generate` makes it (Algorithm 2): few-step denoising,
    then the re-run at `context_t` that writes the clean block's K/V (none with `noisy_context`)."""
    x = denoise_block(denoiser, z, cond, timesteps, stochastic=True, generator=generator, cache=cache, start_frame=start)
    write_context(denoiser, x, cond, cache, start, context_t, noisy_context)
    return x


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
    guidance_scale: float = 1.0,
    context_t: float = 0.0,
    noisy_context: bool = False,
    generator: torch.Generator | None = None,
    on_block: Callable[[int, Tensor], None] | None = None,
) -> Tensor:
    """The inference rollout of `window_rollout` (stochastic few-step sampler, rolling cache of
    `cache_frames` frames): with `noisy_context=False` it draws and returns what `generate` does;
    with `noisy_context=True` the cache holds each block's last noisy K/V. on_block(index, block)."""
    denoiser, cache, blocks = Denoiser(model, guidance_scale=guidance_scale), None, []
    for index, start in enumerate(range(0, num_frames, frames_per_block)):
        z = noise(start, frames_per_block)
        if cache is None:
            cfg_rows = 2 if guidance_scale != 1.0 and cond.null_context is not None else 1
            cache = new_cache(model, torch.cat([z] * cfg_rows), cache_frames)
        x = inference_block(denoiser, z, cond, timesteps, cache, start, context_t, generator, noisy_context)
        blocks.append(x)
        if on_block is not None:
            on_block(index, x)
    return torch.cat(blocks, dim=2)


def window_rollout(
    model: CausalWanModel,
    context: Tensor,
    noise: NoiseFn,
    *,
    num_frames: int,
    window_start: int,
    window_frames: int,
    frames_per_block: int,
    timesteps: Sequence[float],
    exit_steps: Sequence[int],
    cache_frames: int,
    noise_step: int = 0,
    context_t: float = 0.0,
    noisy_context: bool = False,
    generator: torch.Generator | None = None,
    backward_generator: torch.Generator | None = None,
    keep_history: bool = False,
    on_block: BlockHook | None = None,
) -> WindowRollout:
    """Roll out to the window [window_start, window_start + window_frames) of an N-frame rollout and
    return the student's window (see the module docstring). exit_steps: one per window block;
    noise_step: the grid index j the window is re-noised to (eq. 1, Alg. 1 line 4)."""
    fpb, steps = frames_per_block, list(timesteps)
    if window_start not in window_starts(num_frames, window_frames, fpb):
        raise ValueError(f"window start {window_start} is not a block-aligned start in {num_frames} frames")
    if len(exit_steps) != window_frames // fpb:
        raise ValueError(f"need one exit step per window block ({window_frames // fpb}), got {len(exit_steps)}")
    if not 0 <= noise_step < len(steps):
        raise ValueError(f"noise_step {noise_step} is not a grid index in [0, {len(steps)})")
    cond, denoiser = Conditioning(context), Denoiser(model)
    cache: KVCache | None = None
    history: list[Tensor] = []
    for start in range(0, window_start, fpb):  # the rollout before the window: inference, no graph
        z = noise(start, fpb)
        cache = cache if cache is not None else new_cache(model, z, cache_frames)
        x = inference_block(denoiser, z, cond, steps, cache, start, context_t, generator, noisy_context)
        if keep_history:
            history.append(x.cpu())
        if on_block is not None:
            on_block(start, cache)

    blocks = list(range(window_start, window_start + window_frames, fpb))
    sigma = float(sigma_from_t(steps[noise_step]))  # eq. 1: the window's backward-noise level
    exits = [max(int(s), noise_step) for s in exit_steps]  # the block runs steps noise_step..T-1
    clean: list[Tensor] = []
    if sigma < 1.0:  # the rollout's own clean window, from a copy of the cache
        saved = copy_cache(cache) if cache is not None else None
        for start in blocks:
            z = noise(start, fpb)
            cache = cache if cache is not None else new_cache(model, z, cache_frames)
            clean.append(inference_block(denoiser, z, cond, steps, cache, start, context_t, generator, noisy_context))
        cache = saved if saved is not None else new_cache(model, clean[0], cache_frames)

    outputs, inputs = [], []
    for j, start in enumerate(blocks):
        if clean:  # eq. 1, backward noise initialisation: x_t = (1 - sigma_t) x0 + sigma_t eps
            eps = torch.randn(clean[j].shape, generator=backward_generator, device=clean[j].device, dtype=clean[j].dtype)
            x = add_noise(clean[j], eps, sigma)
        else:  # sigma = 1: add_noise(clean, eps, 1) = eps, the block's own rollout noise
            x = noise(start, fpb)
        cache = cache if cache is not None else new_cache(model, x, cache_frames)
        out = few_step_sample(denoiser, x, cond, steps[noise_step:], generator=generator,
                              exit_step=exits[j] - noise_step, cache=cache, start_frame=start)  # Alg. 1: grad at s
        write_context(denoiser, out, cond, cache, start, context_t, noisy_context)  # Alg. 1: clean K/V, no grad
        outputs.append(out)
        inputs.append(x.detach())
        if on_block is not None:
            on_block(start, cache)
    return WindowRollout(
        video=torch.cat(outputs, dim=2), exit_steps=exits, timesteps=steps,
        window_start=window_start, num_frames=num_frames, noise_step=int(noise_step), inputs=torch.cat(inputs, dim=2),
        clean=torch.cat(clean, dim=2) if clean else None,
        history=torch.cat(history, dim=2) if history else None,
    )


# ---------------------------------------------------------------------- the sampler as a policy (GRPO)
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
    cache: KVCache | None = None
    video, states, logps = [], [], []
    for start in range(0, num_frames, fpb):
        x = noise(start, fpb)
        cache = cache if cache is not None else new_cache(model, x, cache_frames)
        block_states, block_logp = [x], []
        for k, t in enumerate(steps):
            x0 = denoiser.x0(x, t, cond, cache=cache, start_frame=start)  # x0 = x_t - sigma v
            if k == len(steps) - 1:
                break
            sigma = float(sigma_from_t(steps[k + 1]))
            eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
            x = add_noise(x0, eps, sigma)  # x_{k+1} = (1 - sigma') x0 + sigma' eps
            block_logp.append(gaussian_logprob(x, (1 - sigma) * x0, sigma, reduce))  # A.6: Gaussian step
            block_states.append(x)
        denoiser.velocity(x0, torch.full((x0.shape[0],), float(context_t), device=x0.device), cond,
                          cache=cache, start_frame=start)
        video.append(x0.to(store) if store is not None else x0)
        states.append(torch.stack(block_states).to(store) if store is not None else torch.stack(block_states))
        logps.append(torch.stack(block_logp, dim=1))
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
        t_ctx = torch.full((clean.shape[0],), float(context_t), device=clean.device)
        with torch.no_grad():  # the recorded clean block's K/V, as the sampler wrote them
            denoiser.velocity(clean, t_ctx, cond, cache=cache, start_frame=start)
            if ref is not None:
                ref.velocity(clean, t_ctx, cond, cache=ref_cache, start_frame=start)
