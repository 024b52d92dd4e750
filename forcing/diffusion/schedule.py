"""Timestep schedules: the shift warp, the few-step grid, the many-step Euler grid, training-time
timestep sampling and Wan's bell-shaped training weighting.

All timesteps are Wan's ``t in [0, 1000]`` (``sigma = t / 1000``). Grids are computed in float64
from exact rationals (``i / n``) so that points that coincide in exact arithmetic coincide bit for
bit: indices ``[0, 12, 24, 36]`` of the 48-step shift-5 grid equal the 4-step list exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .flow import NUM_TRAIN_TIMESTEPS


def shift_sigma(sigma: Tensor | float, shift: float) -> Tensor | float:
    """Timestep shift: sigma' = k sigma / (1 + (k - 1) sigma)."""
    return shift * sigma / (1 + (shift - 1) * sigma)  # SD3 / Wan shift, k = shift


def shift_t(t: Tensor | float, shift: float) -> Tensor | float:
    """:func:`shift_sigma` applied to a Wan timestep in [0, 1000]."""
    return shift_sigma(t / NUM_TRAIN_TIMESTEPS, shift) * NUM_TRAIN_TIMESTEPS


def few_step_timesteps(
    steps: Sequence[float] = (1000, 750, 500, 250),
    shift: float = 5.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """The few-step generator grid: ``steps`` warped through the shifted 1000-step grid.

    Self Forcing looks ``1000 - step`` up in the shifted grid ``linspace(1, 0, 1001)[:-1]``,
    which is exactly ``shift_sigma(step / 1000)``; defaults give sigma 1, 0.9375, 0.8333, 0.625.
    """
    sigma = torch.tensor([float(s) for s in steps], dtype=torch.float64) / NUM_TRAIN_TIMESTEPS
    return (shift_sigma(sigma, shift) * NUM_TRAIN_TIMESTEPS).to(dtype=dtype, device=device)


def euler_timesteps(
    num_steps: int = 48,
    shift: float = 5.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Many-step shifted Euler grid, ``num_steps + 1`` timesteps from 1000 down to 0 (endpoint kept).

    Grid point i has sigma = shift_sigma((num_steps - i) / num_steps). With 48 steps and shift 5,
    indices [0, 12, 24, 36] are the few-step sigmas (1, 0.9375, 0.8333, 0.625) exactly, so ODE
    trajectories land on the student's grid. (The public Self Forcing ODE script uses shift 8 and
    so misses that grid: index 12 there is sigma 0.96, not 0.9375.)
    """
    i = torch.arange(num_steps, -1, -1, dtype=torch.float64)
    return (shift_sigma(i / num_steps, shift) * NUM_TRAIN_TIMESTEPS).to(dtype=dtype, device=device)


def training_grid(
    shift: float = 5.0,
    num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
    device: torch.device | str | None = None,
) -> Tensor:
    """Wan's shifted training grid of ``num_train_timesteps`` points, from 1000 down to 1000/N (no 0)."""
    i = torch.arange(num_train_timesteps, 0, -1, dtype=torch.float64)
    return (shift_sigma(i / num_train_timesteps, shift) * NUM_TRAIN_TIMESTEPS).to(
        dtype=torch.float32, device=device
    )


def sample_training_t(
    batch: int | tuple[int, ...],
    shift: float = 5.0,
    min_t: float = 20.0,
    max_t: float = 980.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Training timesteps as in Self Forcing's DMD: integer t ~ U{0..999}, then the shift, then a
    clamp to [min_t, max_t]. Shape ``[batch]`` (or ``batch`` itself when a tuple).

    The draw covers the whole range and only the clamp applies [min_t, max_t] (public code,
    model/dmd.py: ``randint(min_score_timestep=0, num_train_timestep=1000)``, the shift, then
    ``clamp(min_step=20, max_step=980)``), so the smallest t is 20. Drawing from [20, 980) before
    the shift would start at shift_t(20) = 92.6 for shift 5.
    """
    shape = (batch,) if isinstance(batch, int) else tuple(batch)
    t = torch.randint(0, NUM_TRAIN_TIMESTEPS, shape, generator=generator, device=device).float()
    if shift != 1.0:
        t = shift_t(t, shift)  # sigma' = k sigma / (1 + (k - 1) sigma)
    return t.clamp(min_t, max_t)


def sample_block_t(
    batch: int,
    num_blocks: int,
    frames_per_block: int,
    shift: float = 5.0,
    grid: Tensor | None = None,
    min_t: float = 0.0,
    max_t: float = 1000.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Independent timestep per block, repeated over its frames: ``[B, num_blocks * frames_per_block]``.

    Each block draws a uniform index into ``grid`` (default: Wan's shifted 1000-point training grid,
    as teacher / diffusion forcing do; pass e.g. the few-step list for ODE-init grid indices),
    restricted to the points in ``[min_t, max_t]``.
    """
    if grid is None:
        grid = training_grid(shift)
    grid = grid[(grid >= min_t) & (grid <= max_t)]
    if grid.numel() == 0:
        raise ValueError(f"no grid point in [{min_t}, {max_t}]")
    grid = grid.to(device=device)
    idx = torch.randint(0, grid.numel(), (batch, num_blocks), generator=generator, device=device)
    return grid[idx].repeat_interleave(frames_per_block, dim=1)


def sample_logit_normal_block_t(
    batch: int,
    num_blocks: int,
    frames_per_block: int,
    shift: float = 1.0,
    mean: float = 0.0,
    std: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Logit-normal training timesteps (SD3, Esser et al. 2024, eq. 19: sigma = sigmoid(N(m, s))),
    then the shift, one per block repeated over its frames: ``[B, num_blocks * frames_per_block]``.

    It puts most training timesteps at mid noise, where a small model learns layout; the uniform
    grid with shift 3 puts ~92% of them above t = 200.
    """
    u = torch.randn((batch, num_blocks), generator=generator, device=device) * std + mean
    sigma = torch.sigmoid(u)  # SD3 eq. 19: logit-normal density of sigma
    if shift != 1.0:
        sigma = shift_sigma(sigma, shift)
    return (sigma * NUM_TRAIN_TIMESTEPS).repeat_interleave(frames_per_block, dim=1)


def wan_timestep_weight(
    t: Tensor, shift: float = 5.0, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS
) -> Tensor:
    """Wan's bell-shaped training weight of timesteps ``t`` (any shape), looked up at the nearest grid point.

    Over the shifted training grid: y = exp(-2 ((t - 500) / 1000)^2), minus its minimum, scaled to
    mean 1 over the grid. (The public code's lookup takes one argmin over the whole batch; this one is
    per element.)
    """
    grid = training_grid(shift, num_train_timesteps, device=t.device)
    half = num_train_timesteps / 2
    y = torch.exp(-2 * ((grid - half) / num_train_timesteps) ** 2)  # bell weighting of Wan / DiffSynth
    y = y - y.min()
    y = y * (num_train_timesteps / y.sum())  # normalise to mean 1 over the grid
    idx = (t.reshape(-1, 1).float() - grid.reshape(1, -1)).abs().argmin(dim=1)
    return y[idx].reshape(t.shape)
