"""Causal consistency distillation (LCM style; Causal Forcing++ variant of stage 2).

On the many-step grid t_0 = 1000 > t_1 > ... > t_N = 0 pick an adjacent pair (t_n, t_{n+1}) — the
"t_n, t_{n-1}" of the LCM paper, t_{n+1} being the cleaner one here. The teacher takes one CFG
Euler step x_t_n -> x^_{t_{n+1}}; the EMA target predicts x0 there; the student predicts x0 at
x_t_n and regresses onto it. The x0 = x - sigma v parametrisation meets the boundary condition
f(x, 0) = x by itself: at t_{n+1} = 0 the target is x^ itself.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..diffusion.flow import expand_sigma, sigma_from_t
from .flow_matching import per_frame_mean, weighted_frame_mean


def teacher_euler_step(x_t: Tensor, v_teacher: Tensor, t_from: Tensor, t_to: Tensor) -> Tensor:
    """One Euler step of the (CFG) teacher: x_{t_to} = x_{t_from} + (sigma_to - sigma_from) v."""
    ds = expand_sigma(sigma_from_t(t_to) - sigma_from_t(t_from), x_t)
    return (x_t.float() + ds * v_teacher.float()).to(x_t.dtype)  # Euler step of the PF-ODE


def sample_consistency_t(
    batch: int,
    grid: Tensor,
    num_blocks: int | None = None,
    frames_per_block: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Adjacent grid pairs ``(t_n, t_{n+1})`` with n ~ U{0..N-1}: per sample ``[B]``, or per block
    repeated over its frames ``[B, num_blocks * frames_per_block]`` when ``num_blocks`` is given."""
    shape = (batch,) if num_blocks is None else (batch, num_blocks)
    n = torch.randint(0, grid.numel() - 1, shape, generator=generator, device=grid.device)
    t_n, t_next = grid[n], grid[n + 1]
    if num_blocks is not None:
        t_n = t_n.repeat_interleave(frames_per_block, dim=1)
        t_next = t_next.repeat_interleave(frames_per_block, dim=1)
    return t_n, t_next


def consistency_loss(
    student_x0: Tensor,
    target_x0: Tensor,
    weight: Tensor | None = None,
    mask: Tensor | None = None,
    huber_c: float | None = None,
) -> Tensor:
    """Consistency loss d(f_theta(x_{t_n}, t_n), sg[f_ema(x^_{t_{n+1}}, t_{n+1})]).

    ``student_x0`` carries the graph; ``target_x0`` (the EMA target's x0 after the teacher step) is
    detached here. ``d`` is the squared error, or the pseudo-Huber sqrt(e^2 + c^2) - c per element
    with ``huber_c`` (LCM). ``weight`` / ``mask`` are ``[B]`` or ``[B, F]``.
    """
    diff = student_x0.float() - target_x0.detach().float()
    if huber_c is None:
        elem = diff**2  # L2 consistency distance
    else:
        elem = torch.sqrt(diff**2 + huber_c**2) - huber_c  # pseudo-Huber distance (LCM)
    return weighted_frame_mean(per_frame_mean(elem), weight, mask)
