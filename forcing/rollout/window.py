"""Self-Forcing++ long rollouts (REFERENCE §3): the student rolled out with a rolling KV cache, and
the training window drawn from it.

`window_rollout` (extended DMD, eq. 2). The student is rolled out exactly as at inference
(Algorithm 2: the few-step sampler plus the context re-run, a rolling cache of
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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from forcing.diffusion import Conditioning, Denoiser
from forcing.diffusion.flow import add_noise, sigma_from_t
from forcing.models import CausalWanModel, KVCache

from .cache import copy_cache, new_cache
from .loop import NoiseFn, run_blocks
from .samplers import few_step_sample
from .training import Rollout

WINDOW_SAMPLING = ("uniform", "beta")
#: grid: t drawn uniformly from the few-step grid (eq. 1); first: always t_0 (sigma 1 on the default grid)
BACKWARD_NOISE = ("grid", "first")

#: called with (start_frame, cache) after every block written by the rollout and by the window pass
BlockHook = Callable[[int, KVCache], None]


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
    history: list[Tensor] = []

    def make_cache(z: Tensor) -> KVCache:
        return new_cache(model, z, cache_frames)

    def infer(index: int, start: int, z: Tensor, cache: KVCache) -> Tensor:  # Alg. 2: no graph
        with torch.no_grad():
            return few_step_sample(denoiser, z, cond, steps, generator=generator, cache=cache, start_frame=start)

    def after_prefix(index: int, start: int, x: Tensor, cache: KVCache) -> None:
        if keep_history:
            history.append(x.cpu())
        if on_block is not None:
            on_block(start, cache)

    loop = {"context_t": context_t, "noisy_context": noisy_context}
    _, cache = run_blocks(denoiser, cond, noise, range(0, window_start, fpb), fpb, infer, make_cache,
                          after_block=after_prefix, keep_blocks=False, **loop)  # the rollout before the window

    blocks = list(range(window_start, window_start + window_frames, fpb))
    sigma = float(sigma_from_t(steps[noise_step]))  # eq. 1: the window's backward-noise level
    exits = [max(int(s), noise_step) for s in exit_steps]  # the block runs steps noise_step..T-1
    clean: list[Tensor] = []
    if sigma < 1.0:  # the rollout's own clean window, from a copy of the cache
        saved = copy_cache(cache) if cache is not None else None
        clean, cache = run_blocks(denoiser, cond, noise, blocks, fpb, infer, cache if cache is not None else make_cache, **loop)
        cache = saved

    inputs: list[Tensor] = []

    def window_noise(start: int, frames: int) -> Tensor:
        j = (start - window_start) // fpb
        if clean:  # eq. 1, backward noise initialisation: x_t = (1 - sigma_t) x0 + sigma_t eps
            eps = torch.randn(clean[j].shape, generator=backward_generator, device=clean[j].device, dtype=clean[j].dtype)
            x = add_noise(clean[j], eps, sigma)
        else:  # sigma = 1: add_noise(clean, eps, 1) = eps, the block's own rollout noise
            x = noise(start, frames)
        inputs.append(x.detach())
        return x

    def train(index: int, start: int, z: Tensor, cache: KVCache) -> Tensor:  # Alg. 1: grad at the exit step
        return few_step_sample(denoiser, z, cond, steps[noise_step:], generator=generator,
                               exit_step=exits[index] - noise_step, cache=cache, start_frame=start)

    outputs, _ = run_blocks(
        denoiser, cond, window_noise, blocks, fpb, train, cache if cache is not None else make_cache,
        after_block=None if on_block is None else lambda index, start, x, c: on_block(start, c), **loop,
    )
    return WindowRollout(
        video=torch.cat(outputs, dim=2), exit_steps=exits, timesteps=steps,
        window_start=window_start, num_frames=num_frames, noise_step=int(noise_step), inputs=torch.cat(inputs, dim=2),
        clean=torch.cat(clean, dim=2) if clean else None,
        history=torch.cat(history, dim=2) if history else None,
    )
