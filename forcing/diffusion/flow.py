"""The rectified-flow path used by Wan: noising, velocity target and the conversions between
velocity, clean sample and noise.

Layout is ``[B, C, F, H, W]``; ``sigma = t / 1000`` is given per sample ``[B]``, per frame
``[B, F]`` or as a Python/0-dim scalar. Conversions compute in at least float32 and return
the dtype of ``x_t``.
"""

from __future__ import annotations

import torch
from torch import Tensor

NUM_TRAIN_TIMESTEPS = 1000


def sigma_from_t(t: Tensor | float) -> Tensor | float:
    """Noise level of Wan timestep ``t`` in [0, 1000]: sigma = t / 1000."""
    return t / NUM_TRAIN_TIMESTEPS


def t_from_sigma(sigma: Tensor | float) -> Tensor | float:
    """Inverse of :func:`sigma_from_t`: t = 1000 sigma."""
    return sigma * NUM_TRAIN_TIMESTEPS


def expand_sigma(sigma: Tensor | float, x: Tensor) -> Tensor:
    """Broadcast ``sigma`` (scalar, ``[B]`` or ``[B, F]``) over a ``[B, C, F, H, W]`` tensor."""
    sigma = torch.as_tensor(sigma, device=x.device)
    if not sigma.is_floating_point():
        sigma = sigma.float()
    if sigma.dim() == 0:
        return sigma.reshape(1, 1, 1, 1, 1)
    if sigma.dim() == 1:
        return sigma.reshape(-1, 1, 1, 1, 1)
    if sigma.dim() == 2:
        return sigma.reshape(sigma.shape[0], 1, sigma.shape[1], 1, 1)
    raise ValueError(f"sigma must be a scalar, [B] or [B, F]; got shape {tuple(sigma.shape)}")


def _compute_dtype(*xs: Tensor) -> torch.dtype:
    dtype = torch.float32
    for x in xs:
        dtype = torch.promote_types(dtype, x.dtype)
    return dtype


def add_noise(x0: Tensor, noise: Tensor, sigma: Tensor | float) -> Tensor:
    """Point on the flow path: x_t = (1 - sigma) x0 + sigma eps."""
    dtype = _compute_dtype(x0, noise)
    s = expand_sigma(sigma, x0).to(dtype)
    return ((1 - s) * x0.to(dtype) + s * noise.to(dtype)).to(x0.dtype)  # x_t = (1 - sigma) x0 + sigma eps


def velocity_target(x0: Tensor, noise: Tensor) -> Tensor:
    """Flow-matching regression target: v = eps - x0."""
    return noise - x0  # v = eps - x0


def x0_from_velocity(x_t: Tensor, v: Tensor, sigma: Tensor | float) -> Tensor:
    """Clean sample from a velocity: x0 = x_t - sigma v."""
    dtype = _compute_dtype(x_t, v)
    s = expand_sigma(sigma, x_t).to(dtype)
    return (x_t.to(dtype) - s * v.to(dtype)).to(x_t.dtype)  # x0 = x_t - sigma v


def eps_from_velocity(x_t: Tensor, v: Tensor, sigma: Tensor | float) -> Tensor:
    """Noise from a velocity: eps = x0 + v = x_t + (1 - sigma) v."""
    dtype = _compute_dtype(x_t, v)
    s = expand_sigma(sigma, x_t).to(dtype)
    return (x_t.to(dtype) + (1 - s) * v.to(dtype)).to(x_t.dtype)  # eps = x_t + (1 - sigma) v


def velocity_from_x0(x_t: Tensor, x0: Tensor, sigma: Tensor | float, min_sigma: float = 1e-6) -> Tensor:
    """Velocity from a clean-sample prediction: v = (x_t - x0) / sigma (sigma clamped at ``min_sigma``)."""
    dtype = _compute_dtype(x_t, x0)
    s = expand_sigma(sigma, x_t).to(dtype).clamp_min(min_sigma)
    return ((x_t.to(dtype) - x0.to(dtype)) / s).to(x_t.dtype)  # v = (x_t - x0) / sigma
