"""Denoising (flow-matching) and ODE-regression losses: plain functions of (model, inputs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..diffusion.flow import add_noise, sigma_from_t, velocity_target
from ..diffusion.guidance import Conditioning, Denoiser
from ..diffusion.schedule import wan_timestep_weight

ModelFn = Denoiser | Callable[[Tensor, Tensor], Tensor]


def per_frame_mean(x: Tensor) -> Tensor:
    """Mean over channels and space: ``[B, C, F, H, W] -> [B, F]``."""
    return x.mean(dim=(1, 3, 4))


def _as_frames(w: Tensor | None, shape: tuple[int, int], device: torch.device) -> Tensor:
    """A weight / mask given per sample ``[B]`` or per frame ``[B, F]`` (or None) as ``[B, F]`` float."""
    if w is None:
        return torch.ones(shape, device=device)
    w = torch.as_tensor(w, device=device).float()
    if w.dim() == 1:
        w = w.reshape(-1, 1)
    return w.expand(shape)


def weighted_frame_mean(err: Tensor, weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    """sum_{b,f} w m e / sum_{b,f} m for a per-frame error ``e [B, F]`` (0 when the mask is empty)."""
    w = _as_frames(weight, err.shape, err.device)
    m = _as_frames(mask, err.shape, err.device)
    return (w * m * err).sum() / m.sum().clamp_min(1.0)


def flow_matching_loss(
    model: ModelFn | Tensor,
    x0: Tensor,
    t: Tensor,
    noise: Tensor,
    cond: Conditioning | None = None,
    *,
    weight: Tensor | None = None,
    mask: Tensor | None = None,
    weighting: str | None = None,
    shift: float = 5.0,
    **forward_kwargs: Any,
) -> Tensor:
    """Flow-matching MSE between the predicted velocity at x_t and v = eps - x0.

    ``model`` is a :class:`Denoiser` (called as ``model.velocity(x_t, t, cond, **forward_kwargs)``),
    any ``fn(x_t, t, **forward_kwargs) -> v``, or an already computed velocity tensor (made at
    ``x_t = add_noise(x0, noise, t / 1000)``). ``t`` is ``[B]`` or ``[B, F]``. ``weight`` and
    ``mask`` (1 = frame counts) are ``[B]`` or ``[B, F]``; ``weighting="wan"`` multiplies in Wan's
    bell-shaped weight of ``t`` on the ``shift`` grid. The loss is the weighted per-frame MSE averaged
    over unmasked frames, in float32.
    """
    if t.dim() > 2:
        raise ValueError(
            f"t must be [B] or [B, F], got shape {tuple(t.shape)}: the order is (model_or_v, x0, t, noise)"
        )
    if isinstance(model, Tensor):
        v = model
    else:
        x_t = add_noise(x0, noise, sigma_from_t(t))  # x_t = (1 - sigma) x0 + sigma eps
        if isinstance(model, Denoiser):
            if cond is None:
                raise ValueError("a Denoiser needs cond")
            v = model.velocity(x_t, t, cond, **forward_kwargs)
        else:
            v = model(x_t, t, **forward_kwargs)
    target = velocity_target(x0, noise)  # v = eps - x0
    err = per_frame_mean((v.float() - target.float()) ** 2)
    if weighting not in (None, "none"):
        if weighting != "wan":
            raise ValueError(f"unknown weighting {weighting!r}: 'none' | 'wan'")
        wan = wan_timestep_weight(t, shift)  # Wan / DiffSynth bell-shaped timestep weight
        weight = (
            wan
            if weight is None
            else _as_frames(weight, err.shape, err.device) * _as_frames(wan, err.shape, err.device)
        )
    return weighted_frame_mean(err, weight, mask)


def ode_regression_loss(
    pred_x0: Tensor, target_x0: Tensor, weight: Tensor | None = None, mask: Tensor | None = None
) -> Tensor:
    """ODE-initialisation loss: MSE between the student's x0 and the ODE endpoint (target detached)."""
    err = per_frame_mean((pred_x0.float() - target_x0.detach().float()) ** 2)  # ||G(x_{t_i}) - x_0^ODE||^2
    return weighted_frame_mean(err, weight, mask)
