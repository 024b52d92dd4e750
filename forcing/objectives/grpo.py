"""GRPO pieces of Self-Forcing++'s optional reward stage (appendix A.6, eq. 7).

The stochastic few-step sampler is a Gaussian policy: a re-noising step
x_{k+1} = (1 - sigma') x0_theta(x_k) + sigma' eps is x_{k+1} ~ N((1 - sigma') x0_theta(x_k), sigma'^2 I)
given x_k. GRPO scores a group of G samples of one prompt, normalises the rewards within the
group (advantages), and maximises PPO's clipped ratio objective over every stochastic step.
Everything here is a plain function of tensors (no model, no paradigm).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

REDUCTIONS = ("sum", "mean")


def _reduce(per_element: Tensor, reduce: str) -> Tensor:
    """Sum (exact joint density) or mean (per-dimension) over every dim but the batch."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce={reduce!r} is not one of {REDUCTIONS}")
    dims = tuple(range(1, per_element.dim()))
    if not dims:
        return per_element
    return per_element.sum(dims) if reduce == "sum" else per_element.mean(dims)


def _per_sample(std: Tensor | float, x: Tensor) -> Tensor:
    """A scalar or per-sample [B] std broadcast over x [B, ...] (float64)."""
    std = torch.as_tensor(std, dtype=torch.float64, device=x.device)
    return std.reshape(-1, *[1] * (x.dim() - 1)) if std.dim() else std


def gaussian_logprob(x_next: Tensor, mean: Tensor, std: Tensor | float, reduce: str = "sum") -> Tensor:
    """log N(x_next; mean, std^2 I) per sample [B], in float64.

    reduce="sum" is the exact log-density of the whole tensor; "mean" divides it by the number of
    dimensions (Flow-GRPO's per-dimension normalisation, which keeps PPO ratios near 1).
    """
    x, mu = x_next.double(), mean.double()
    s = _per_sample(std, x)
    z = (x - mu) / s
    log_density = -0.5 * z.square() - torch.log(s) - 0.5 * math.log(2 * math.pi)  # log N(x; mu, s^2)
    return _reduce(log_density.expand_as(x), reduce)


def gaussian_kl(mean_p: Tensor, mean_q: Tensor, std: Tensor | float, reduce: str = "sum") -> Tensor:
    """KL(N(mean_p, std^2 I) || N(mean_q, std^2 I)) = ||mean_p - mean_q||^2 / (2 std^2) per sample [B]."""
    p, q = mean_p.double(), mean_q.double()
    s = _per_sample(std, p)
    return _reduce(((p - q) / s).square() * 0.5, reduce)  # closed-form KL of equal-variance Gaussians


def group_advantages(rewards: Tensor, group_size: int, eps: float = 1e-8) -> Tensor:
    """GRPO advantages A_i = (r_i - mean(group)) / (std(group) + eps) for rewards [B].

    Groups are contiguous runs of `group_size` samples of one prompt (B % group_size == 0); std is
    the population std, so each group's advantages have mean 0 and std 1 (all 0 for a tied group).
    """
    if group_size < 1 or rewards.dim() != 1 or rewards.numel() % group_size:
        raise ValueError(f"{tuple(rewards.shape)} rewards do not split into groups of {group_size}")
    r = rewards.double().reshape(-1, group_size)
    mean = r.mean(1, keepdim=True)
    std = r.std(1, unbiased=False, keepdim=True)
    return ((r - mean) / (std + eps)).reshape(-1)  # group-normalised advantage (A.6)


def grpo_loss(
    logp_new: Tensor, logp_old: Tensor, advantages: Tensor, clip_eps: float, reduction: str = "mean"
) -> Tensor:
    """Negative clipped surrogate of eq. 7: -min(r A, clip(r, 1 - eps, 1 + eps) A), r = exp(logp_new - logp_old).

    logp_new / logp_old: [B] or [B, S] (one entry per stochastic step); advantages: [B]. `reduction`
    "mean" averages over all entries (the objective), "sum" adds them (for per-block accumulation).
    """
    ratio = torch.exp(logp_new.double() - logp_old.double().detach())
    adv = advantages.double().detach().reshape(-1, *[1] * (logp_new.dim() - 1))
    clipped = ratio.clamp(1 - clip_eps, 1 + clip_eps)
    surrogate = torch.minimum(ratio * adv, clipped * adv)  # PPO clip, eq. 7
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not one of {REDUCTIONS}")
    return -(surrogate.sum() if reduction == "sum" else surrogate.mean())


def clip_fraction(logp_new: Tensor, logp_old: Tensor, clip_eps: float) -> Tensor:
    """Fraction of ratios outside [1 - eps, 1 + eps] (for logging)."""
    ratio = torch.exp(logp_new.detach().double() - logp_old.detach().double())
    return ((ratio - 1).abs() > clip_eps).double().mean()
