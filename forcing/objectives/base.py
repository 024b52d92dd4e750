"""The interface shared by the distribution-matching objectives (DMD, SiD, GAN) and helpers they use.

An objective knows no paradigm: it receives :class:`~forcing.objectives.inputs.LossInputs` (the
generated video ``x_gen [B, C, F, H, W]``, the :class:`~forcing.diffusion.Conditioning`, the frozen
real score and the critic as :class:`~forcing.diffusion.Denoiser` s, ...) and returns a dict with
``loss`` plus detached named terms. Paradigms build objectives from ``conf/objective/*.yaml`` with
``hydra.utils.instantiate`` (each option names its class as ``_target_``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..diffusion.guidance import Denoiser
from ..diffusion.schedule import sample_training_t
from .inputs import LossInputs, NoiseDraw, TRange


def input_gradient_loss(
    fn: Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]], x: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Evaluate a scalar ``fn(x)`` through frozen networks; gradient to ``x`` only, none to any parameter.

    ``fn`` runs on a detached copy of ``x`` that requires grad; ``torch.autograd.grad`` takes
    d fn / d x right here (the networks' graph is consumed and freed, their ``.grad`` untouched), and
    the returned surrogate ``fn(x) + <x - sg[x], g>`` has the value of ``fn(x)`` and gradient ``g``
    w.r.t. ``x`` (so it backpropagates into the generator). Unlike toggling ``requires_grad``, this
    is safe under activation checkpointing and FSDP2. Without grad (or if ``x`` needs none) it just
    evaluates ``fn``. Returns ``(surrogate, terms)``.
    """
    if not (torch.is_grad_enabled() and x.requires_grad):
        with torch.no_grad():
            return fn(x.detach())
    leaf = x.detach().requires_grad_()
    value, terms = fn(leaf)
    if not value.requires_grad:  # fn does not depend on x
        return value, terms
    (g,) = torch.autograd.grad(value, leaf)
    delta = x.to(g.dtype) - x.detach().to(g.dtype)  # zero-valued, carries x's graph
    return value.detach() + (delta * g).sum().to(value.dtype), terms  # value fn(x), gradient g


def logged(terms: dict[str, Tensor | float]) -> dict[str, Tensor]:
    """Detach every term but ``loss`` (for logging)."""
    return {k: (v if k == "loss" else torch.as_tensor(v).detach()) for k, v in terms.items()}


class DistributionMatching(nn.Module):
    """Base class: timestep sampling and the ``generator_loss`` / ``critic_loss`` template methods.

    Each loss draws the critic timesteps ``t`` and then the noise of ``x_gen`` from
    ``inputs.generator`` (in this order, :meth:`draw`), hands them to the subclass's
    :meth:`generator_terms` / :meth:`critic_terms` and logs ``generator_t`` / ``critic_t``.

    Timesteps: per sample (shared over frames unless ``per_frame``), integer-uniform in
    ``[0, 1000)``, shifted by ``shift`` and clamped to ``[min_t, max_t]`` (Self Forcing's DMD, REFERENCE
    §3 "a shifted t clamped to [20, 980]"; see :func:`~forcing.diffusion.schedule.sample_training_t`).
    A ``t_range=(lo, hi)`` (either order; floats or ``[B]`` tensors, already in shifted-t space, e.g.
    the exit step's interval between adjacent few-step grid points) replaces that: t ~ U[lo, hi] intersected with ``[min_t, max_t]``, no shift.

    Settings a paradigm reads: ``real_guidance_scale`` (the CFG of the real score it builds),
    ``t_from_exit_step`` (pass the exit step's interval as ``t_range``) and ``name`` (the config's
    label). Class attributes let a paradigm validate compatibility: ``requires_real_data`` (the
    critic loss needs real videos) and ``critic_kind`` (``"score"``: the critic is a fake-score
    denoiser trained by flow matching; ``"discriminator"``: the critic trunk plus heads owned by the
    objective, built by :meth:`bind_critic`).
    """

    requires_real_data: ClassVar[bool] = False
    critic_kind: ClassVar[str] = "score"

    def __init__(
        self,
        shift: float = 5.0,
        min_t: float = 20.0,
        max_t: float = 980.0,
        per_frame: bool = False,
        *,
        name: str = "",
        real_guidance_scale: float = 1.0,
        t_from_exit_step: bool = False,
    ):
        super().__init__()
        self.shift = float(shift)
        self.min_t = float(min_t)
        self.max_t = float(max_t)
        self.per_frame = bool(per_frame)
        self.name = str(name)
        self.real_guidance_scale = float(real_guidance_scale)
        self.t_from_exit_step = bool(t_from_exit_step)

    def bind_critic(self, critic: nn.Module) -> DistributionMatching:
        """Build what the objective owns that depends on the critic network (once, right after the
        critic is built; default: nothing). Returns ``self``."""
        return self

    def sample_t(self, x: Tensor, t_range: TRange = None, generator: torch.Generator | None = None) -> Tensor:
        """Critic / score timesteps for a ``[B, C, F, H, W]`` batch: ``[B]`` (or ``[B, F]`` if per_frame)."""
        shape = (x.shape[0], x.shape[2]) if self.per_frame else (x.shape[0],)
        if t_range is None:
            return sample_training_t(shape, self.shift, self.min_t, self.max_t, generator, x.device)
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

    def draw(self, inputs: LossInputs) -> NoiseDraw:
        """The loss's timesteps, then the noise of ``inputs.x_gen``, from ``inputs.generator``."""
        t = self.sample_t(inputs.x_gen, inputs.t_range, inputs.generator)
        return NoiseDraw(t, self.noise_like(inputs.x_gen, inputs.generator))

    def generator_loss(self, inputs: LossInputs) -> dict[str, Tensor]:
        """Loss whose gradient reaches only ``inputs.x_gen`` (and so the generator); never the critic
        or teacher. Returns ``loss`` plus detached named terms."""
        draw = self.draw(inputs)
        return logged({**self.generator_terms(inputs, draw), "generator_t": draw.t.float().mean()})

    def critic_loss(self, inputs: LossInputs) -> dict[str, Tensor]:
        """Loss for the critic (and the objective's own heads) on ``sg[inputs.x_gen]``."""
        inputs = replace(inputs, x_gen=inputs.x_gen.detach())
        draw = self.draw(inputs)
        return logged({**self.critic_terms(inputs, draw), "critic_t": draw.t.float().mean()})

    def generator_terms(self, inputs: LossInputs, draw: NoiseDraw) -> dict[str, Tensor | float]:
        """The generator's ``loss`` and named terms at the drawn ``t`` and noise (subclass hook)."""
        raise NotImplementedError

    def critic_terms(self, inputs: LossInputs, draw: NoiseDraw) -> dict[str, Tensor | float]:
        """The critic's ``loss`` and named terms on the detached ``inputs.x_gen`` (subclass hook)."""
        raise NotImplementedError


def critic_parameters(objective: nn.Module, critic: Denoiser | nn.Module) -> Iterable[nn.Parameter]:
    """Everything the critic optimiser steps: the critic network plus the objective's own heads."""
    yield from critic.parameters()
    yield from objective.parameters()
