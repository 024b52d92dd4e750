"""The two samplers on the flow path, the only ones in the suite: the many-step Euler ODE and the
stochastic few-step sampler. Both only call a :class:`~forcing.diffusion.Denoiser`; with a KV cache
(``cache=..., start_frame=...`` forward kwargs) they denoise one block of a rollout
(`forcing.rollout.loop.run_blocks`), without one a whole clip (bidirectional models, ODE pairs).

``timesteps`` is a sequence of Wan timesteps from noisy to clean, shared by the batch (``[S]``),
or given per step as ``[S, B]`` or ``[S, B, F]`` (per-frame timesteps reach the model as ``[B, F]``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from forcing.diffusion import Conditioning, Denoiser, add_noise, expand_sigma, sigma_from_t

#: called by the few-step sampler after each re-noising: (step k, x0 prediction at step k, x_{k+1})
StepHook = Callable[[int, Tensor, Tensor], None]


def _step_t(timesteps: Tensor, i: int, x: Tensor) -> Tensor:
    """Timestep of step ``i`` as ``[B]`` or ``[B, F]``."""
    t = timesteps[i].to(device=x.device, dtype=torch.float32)
    return t.expand(x.shape[0]) if t.dim() == 0 else t


@torch.no_grad()
def euler_sample(
    denoiser: Denoiser,
    noise: Tensor,
    cond: Conditioning,
    timesteps: Tensor | Sequence[float],
    return_indices: Sequence[int] = (),
    **forward_kwargs: Any,
) -> Tensor | tuple[Tensor, list[Tensor]]:
    """Integrate the probability-flow ODE dx/dsigma = v with Euler steps along ``timesteps``.

    If the grid does not end at 0 a final step to sigma = 0 is added (that is the x0 prediction).
    With ``return_indices`` also returns the states ``x_{t_i}`` at those grid indices (index 0 is
    ``noise``; index ``len(timesteps) - 1`` of a grid ending at 0 is the returned sample).
    """
    timesteps = torch.as_tensor(timesteps, dtype=torch.float32)
    if bool((timesteps[-1] != 0).any()):
        timesteps = torch.cat([timesteps, torch.zeros_like(timesteps[-1:])], 0)
    last = timesteps.shape[0] - 1
    return_indices = [i % (last + 1) for i in return_indices]  # negative indices count from the end
    x = noise
    states: dict[int, Tensor] = {}
    for i in range(timesteps.shape[0] - 1):
        if i in return_indices:
            states[i] = x
        t, t_next = _step_t(timesteps, i, x), _step_t(timesteps, i + 1, x)
        v = denoiser.velocity(x, t, cond, **forward_kwargs)
        ds = expand_sigma(sigma_from_t(t_next) - sigma_from_t(t), x)
        x = (x.float() + ds * v.float()).to(noise.dtype)  # Euler: x_{i+1} = x_i + (sigma_{i+1} - sigma_i) v
    if last in return_indices:
        states[last] = x
    if not return_indices:
        return x
    return x, [states[i] for i in return_indices]


def few_step_sample(
    denoiser: Denoiser,
    noise: Tensor,
    cond: Conditioning,
    timesteps: Tensor | Sequence[float],
    generator: torch.Generator | None = None,
    exit_step: int | None = None,
    return_inputs: bool = False,
    on_step: StepHook | None = None,
    **forward_kwargs: Any,
) -> Tensor | tuple[Tensor, list[Tensor]]:
    """Few-step sampler: at each step predict x0, then re-noise it to the next sigma with fresh noise.

    Runs under ``no_grad`` except at ``exit_step`` (default: the last step), whose x0 prediction is
    returned (Self Forcing's exit step; later steps are not run). With ``return_inputs`` also
    returns the noisy input of every step that ran; ``on_step`` sees every re-noising (GRPO's
    Gaussian policy steps). ``generator`` must live on ``noise``'s device.
    """
    timesteps = torch.as_tensor(timesteps, dtype=torch.float32)
    n = timesteps.shape[0]
    exit_step = n - 1 if exit_step is None else exit_step
    if not 0 <= exit_step < n:
        raise ValueError(f"exit_step {exit_step} outside [0, {n})")
    x = noise
    inputs: list[Tensor] = []
    for i in range(exit_step + 1):
        inputs.append(x)
        t = _step_t(timesteps, i, x)
        with torch.set_grad_enabled(torch.is_grad_enabled() and i == exit_step):
            x0 = denoiser.x0(x, t, cond, **forward_kwargs)  # x0 = x_t - sigma v
        if i == exit_step:
            break
        fresh = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x = add_noise(x0, fresh, sigma_from_t(_step_t(timesteps, i + 1, x0)))  # re-noise to sigma_{i+1}
        if on_step is not None:
            on_step(i, x0, x)
    return (x0, inputs) if return_inputs else x0


def sample(
    denoiser: Denoiser,
    noise: Tensor,
    cond: Conditioning,
    timesteps: Tensor | Sequence[float],
    *,
    stochastic: bool,
    generator: torch.Generator | None = None,
    **forward_kwargs: Any,
) -> Tensor:
    """Denoise ``noise`` from ``timesteps[0]`` to a clean sample with the few-step sampler
    (``stochastic``: distilled generators) or the Euler ODE (many-step models, CFG)."""
    if stochastic:
        return few_step_sample(denoiser, noise, cond, timesteps, generator=generator, **forward_kwargs)
    return euler_sample(denoiser, noise, cond, timesteps, **forward_kwargs)
