"""The stochastic few-step sampler's step as a Gaussian transition (Self-Forcing++ A.6): a re-noising
step x_{k+1} = (1 - sigma') x0_theta(x_k) + sigma' eps is x_{k+1} ~ N((1 - sigma') x0_theta(x_k), sigma'^2 I).
Densities of such steps and the KL between two of them, used by the GRPO rollouts and objective.
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
    """KL(N(mean_p, std^2 I) || N(mean_q, std^2 I)) = ||mean_p - mean_q||^2 / (2 std^2) per sample [B]
    (the closed form Flow-GRPO uses for its Gaussian SDE steps; no sampled k3 estimator needed)."""
    p, q = mean_p.double(), mean_q.double()
    s = _per_sample(std, p)
    return _reduce(((p - q) / s).square() * 0.5, reduce)  # closed-form KL of equal-variance Gaussians
