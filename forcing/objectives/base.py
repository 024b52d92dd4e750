"""The interface shared by the distribution-matching objectives (DMD, SiD, GAN) and helpers they use.

An objective knows no paradigm: it receives the generated video ``x_gen [B, C, F, H, W]``, the
:class:`~forcing.diffusion.Conditioning`, the frozen real score and the critic as
:class:`~forcing.diffusion.Denoiser` s, and returns a dict with ``loss`` plus detached named terms.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..diffusion.guidance import Conditioning, Denoiser
from ..diffusion.schedule import shift_t

TRange = tuple[Any, Any] | None


@contextmanager
def frozen(*modules: Any) -> Iterator[None]:
    """Build graphs through ``modules`` without recording their parameters (only inputs carry grad).

    Parameters that require grad are switched off for the duration and restored after, so a later
    ``backward`` reaches the inputs but leaves the parameters' ``.grad`` untouched. Works with
    non-reentrant activation checkpointing (the graph is fixed at forward time); reentrant
    checkpointing would recompute with the parameters live again.
    """
    params: list[nn.Parameter] = []
    seen: set[int] = set()
    for m in modules:
        source = m.parameters() if hasattr(m, "parameters") else ()
        for p in source:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def flat_mean(x: Tensor) -> Tensor:
    """Mean over every axis but the batch axis: ``[B, ...] -> [B]``."""
    return x.reshape(x.shape[0], -1).mean(dim=1)


def logged(terms: dict[str, Tensor | float]) -> dict[str, Tensor]:
    """Detach every term but ``loss`` (for logging)."""
    return {k: (v if k == "loss" else torch.as_tensor(v).detach()) for k, v in terms.items()}


class DistributionMatching(nn.Module):
    """Base class: timestep sampling and the ``generator_loss`` / ``critic_loss`` interface.

    Timesteps: per sample (shared over frames unless ``per_frame``), integer-uniform in
    ``[min_t, max_t)``, shifted by ``shift`` and clamped to ``[min_t, max_t]`` (Self Forcing's DMD).
    A ``t_range=(lo, hi)`` (floats or ``[B]`` tensors, already in shifted-t space, e.g. the exit step's
    ``[t_{s+1}, t_s]``) replaces that: t ~ U[lo, hi] intersected with ``[min_t, max_t]``, no shift.

    Class attributes let a paradigm validate compatibility: ``requires_real_data`` (the critic loss
    needs real videos) and ``critic_kind`` (``"score"``: the critic is a fake-score denoiser trained
    by flow matching; ``"discriminator"``: the critic trunk plus heads owned by the objective).
    """

    requires_real_data: ClassVar[bool] = False
    critic_kind: ClassVar[str] = "score"

    def __init__(self, shift: float = 5.0, min_t: float = 20.0, max_t: float = 980.0, per_frame: bool = False):
        super().__init__()
        self.shift = float(shift)
        self.min_t = float(min_t)
        self.max_t = float(max_t)
        self.per_frame = bool(per_frame)

    def sample_t(
        self, x: Tensor, t_range: TRange = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Critic / score timesteps for a ``[B, C, F, H, W]`` batch: ``[B]`` (or ``[B, F]`` if per_frame)."""
        shape = (x.shape[0], x.shape[2]) if self.per_frame else (x.shape[0],)
        if t_range is None:
            u = torch.randint(int(self.min_t), int(self.max_t), shape, generator=generator, device=x.device)
            return shift_t(u.float(), self.shift).clamp(self.min_t, self.max_t)  # shift then clamp
        lo = torch.as_tensor(t_range[0], dtype=torch.float32, device=x.device).clamp(self.min_t, self.max_t)
        hi = torch.as_tensor(t_range[1], dtype=torch.float32, device=x.device).clamp(self.min_t, self.max_t)
        lo, hi = torch.minimum(lo, hi), torch.maximum(lo, hi)
        if len(shape) == 2:
            lo, hi = lo.reshape(-1, 1) if lo.dim() else lo, hi.reshape(-1, 1) if hi.dim() else hi
        u = torch.rand(shape, generator=generator, device=x.device)
        return lo + (hi - lo) * u  # t ~ U[lo, hi]

    def noise_like(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Gaussian noise shaped like ``x`` (``generator`` on ``x``'s device)."""
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)

    def generator_loss(
        self,
        x_gen: Tensor,
        cond: Conditioning,
        *,
        real_score: Denoiser,
        critic: Denoiser,
        real: Tensor | None = None,
        t_range: TRange = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Loss whose gradient reaches only ``x_gen`` (and so the generator); never the critic or teacher."""
        raise NotImplementedError

    def critic_loss(
        self,
        x_gen: Tensor,
        cond: Conditioning,
        *,
        critic: Denoiser,
        real: Tensor | None = None,
        t_range: TRange = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Loss for the critic (and the objective's own heads); ``x_gen`` is detached inside."""
        raise NotImplementedError

    def check_real(self, real: Tensor | None, x_gen: Tensor) -> Tensor:
        """Validate the real batch the objective needs."""
        if real is None:
            raise ValueError(f"{type(self).__name__} needs real videos: pass real=...")
        if real.shape != x_gen.shape:
            raise ValueError(f"real {tuple(real.shape)} and generated {tuple(x_gen.shape)} shapes differ")
        return real


def critic_parameters(objective: nn.Module, critic: Denoiser | nn.Module) -> Iterable[nn.Parameter]:
    """Everything the critic optimiser steps: the critic network plus the objective's own heads."""
    yield from critic.parameters()
    yield from objective.parameters()
