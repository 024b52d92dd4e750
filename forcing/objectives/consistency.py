"""Causal consistency distillation (LCM style; Causal Forcing++ variant of stage 2).

On the many-step grid t_0 = 1000 > t_1 > ... > t_N = 0 pick an adjacent pair (t_n, t_{n+1}) — the
"t_n, t_{n-1}" of the LCM paper, t_{n+1} being the cleaner one here. The teacher takes one CFG
ODE step x_t_n -> x^_{t_{n+1}}; the EMA target predicts x0 there; the student predicts x0 at
x_t_n and regresses onto it. The x0 = x - sigma v parametrisation meets the boundary condition
f(x, 0) = x by itself: at t_{n+1} = 0 the target is x^ itself.

The teacher's step (Causal Forcing App. D: UniPC) is `teacher_unipc_step`: diffusers'
`UniPCMultistepScheduler` in flow-matching mode. From a fresh state (a consistency pair has no
solver history) UniPC's predictor has order 1: UniP-1 with x0-prediction is DDIM, which for
x0 = x - sigma v is exactly the Euler step x + (sigma' - sigma) v (`teacher_euler_step`, kept as the
`euler` option). The UniC-1 corrector, with the teacher re-evaluated at the predicted point, makes
the step second order (UniPC's "order p + 1"): one more CFG teacher forward per step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from ..diffusion.flow import expand_sigma, sigma_from_t
from .flow_matching import per_frame_mean, weighted_frame_mean

if TYPE_CHECKING:  # diffusers is imported where it is used (it takes seconds to import)
    from diffusers import UniPCMultistepScheduler


def teacher_euler_step(x_t: Tensor, v_teacher: Tensor, t_from: Tensor, t_to: Tensor) -> Tensor:
    """One Euler step of the (CFG) teacher: x_{t_to} = x_{t_from} + (sigma_to - sigma_from) v."""
    ds = expand_sigma(sigma_from_t(t_to) - sigma_from_t(t_from), x_t)
    return (x_t.float() + ds * v_teacher.float()).to(x_t.dtype)  # Euler step of the PF-ODE


#: the teacher's ODE step: unipc (App. D; UniP-1 + UniC-1, second order) | euler (first order)
TEACHER_SOLVERS = ("unipc", "euler")


def unipc_flow_scheduler(num_steps: int = 48, shift: float = 5.0) -> UniPCMultistepScheduler:
    """diffusers' UniPC for flow matching on the grid of `forcing.diffusion.euler_timesteps`:
    sigma_n = k s / (1 + (k - 1) s), s = 1 - n / N, then 0 (diffusers lowers sigma_0 = 1 by 1e-6)."""
    from diffusers.schedulers.scheduling_unipc_multistep import UniPCMultistepScheduler

    scheduler = UniPCMultistepScheduler(
        num_train_timesteps=1000, prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift,
        solver_order=2, solver_type="bh2", predict_x0=True, lower_order_final=True, final_sigmas_type="zero",
    )
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 0.0, num_steps + 1)[:-1])  # shifted by flow_shift inside
    return scheduler


def teacher_unipc_step(
    velocity: Callable[[Tensor, Tensor], Tensor],
    x_t: Tensor,
    v_t: Tensor,
    index: Tensor,
    scheduler: UniPCMultistepScheduler,
) -> Tensor:
    """One UniPC step of the (CFG) teacher from grid point n to n + 1, per frame: [B, C, F, H, W].

    index: n per frame [B, F] (or [B]); v_t: the teacher's velocity at (x_t, t_n); velocity(x, t)
    evaluates it at the predicted point (t [B, F] = t_{n+1}). Every group of frames that shares n
    runs through a fresh copy of `scheduler`: `step` (UniP-1 predictor), then UniC-1 with the
    teacher's x0 there (`multistep_uni_c_bh_update`, what the scheduler's next `step` would apply).
    """
    index = index if index.dim() == 2 else index[:, None].expand(-1, x_t.shape[2])
    frames = lambda x: x.float().permute(0, 2, 1, 3, 4)  # noqa: E731 - [B, F, C, H, W]
    xs, vs = frames(x_t), frames(v_t)
    x_pred, steps = torch.empty_like(xs), {}
    for n in index.unique().tolist():
        sched, mask = copy.deepcopy(scheduler), index == n
        sched.set_begin_index(int(n))
        x_pred[mask] = sched.step(vs[mask], sched.timesteps[int(n)], xs[mask]).prev_sample  # UniP-1 (= Euler)
        steps[n] = (sched, mask)
    t_next = scheduler.sigmas.to(x_t.device)[index + 1] * 1000.0
    v_next = frames(velocity(x_pred.permute(0, 2, 1, 3, 4).to(x_t.dtype), t_next))
    out = torch.empty_like(xs)
    for sched, mask in steps.values():
        m_next = sched.convert_model_output(v_next[mask], sample=x_pred[mask])  # teacher x0 at the prediction
        out[mask] = sched.multistep_uni_c_bh_update(
            this_model_output=m_next, last_sample=xs[mask], this_sample=x_pred[mask], order=1
        )  # UniC-1 corrector: the step's second order
    return out.permute(0, 2, 1, 3, 4).to(x_t.dtype)


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
