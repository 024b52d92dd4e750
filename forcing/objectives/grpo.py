"""GRPO pieces of Self-Forcing++'s optional reward stage (appendix A.6, eq. 7).

The stochastic few-step sampler is a Gaussian policy: a re-noising step
x_{k+1} = (1 - sigma') x0_theta(x_k) + sigma' eps is x_{k+1} ~ N((1 - sigma') x0_theta(x_k), sigma'^2 I)
given x_k. The sampler is a Markov chain, so the log-probability of a trajectory (a whole video's
every stochastic step, all blocks) is the SUM of its steps' log-probabilities, and its PPO ratio is
r = pi_theta(tau) / pi_old(tau) = exp(sum_k [log pi_theta - log pi_old]_k). GRPO scores a group of G
trajectories of one prompt, normalises the rewards within the group (advantages), and maximises
PPO's clipped ratio objective (eq. 7) with one ratio per trajectory. Optional regulariser: the KL
of the trajectory to a frozen reference policy, which for Gaussian steps of equal variance has the
closed form ||mu_theta - mu_ref||^2 / (2 sigma^2) per step (as in Flow-GRPO, Liu et al. 2025, for
its SDE sampler), summed over the steps (chain rule of the KL for Markov chains, evaluated on the
sampled states). Everything here is a plain function of tensors (no model, no paradigm).
"""

from __future__ import annotations

import torch
from torch import Tensor

from forcing.diffusion.gaussian import REDUCTIONS, gaussian_kl, gaussian_logprob

__all__ = [
    "REDUCTIONS", "clip_fraction", "gaussian_kl", "gaussian_logprob", "group_advantages", "grpo_logprob_weights",
    "grpo_loss", "trajectory_logprob",
]

def trajectory_logprob(step_logps: Tensor) -> Tensor:
    """log pi(tau) = sum_k log pi(x_{k+1} | x_k) (A.6: the sampler is a Markov chain): per-step
    log-probabilities [B, ...] (blocks, steps) summed to one per trajectory [B]; [B] is returned as is."""
    return step_logps if step_logps.dim() == 1 else step_logps.flatten(1).sum(1)


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


def grpo_loss(logp_new: Tensor, logp_old: Tensor, advantages: Tensor, clip_eps: float) -> Tensor:
    """Negative clipped surrogate of eq. 7, one ratio per trajectory, averaged over the B trajectories:
    -mean_i min(r_i A_i, clip(r_i, 1 - eps, 1 + eps) A_i), r_i = exp(log pi_new(tau_i) - log pi_old(tau_i)).

    logp_new / logp_old: trajectory log-probabilities [B], or per-step ones [B, ...] that are summed
    per trajectory first (`trajectory_logprob`); advantages: [B].
    """
    log_ratio = trajectory_logprob(logp_new).double() - trajectory_logprob(logp_old).double().detach()
    ratio = torch.exp(log_ratio)  # r = exp(sum_k log-prob differences)
    adv = advantages.double().detach().reshape(-1)
    clipped = ratio.clamp(1 - clip_eps, 1 + clip_eps)
    return -torch.minimum(ratio * adv, clipped * adv).mean()  # PPO clip, eq. 7


def grpo_logprob_weights(logp_new: Tensor, logp_old: Tensor, advantages: Tensor, clip_eps: float) -> Tensor:
    """d grpo_loss / d log pi_new(tau_i) at the given (detached) log-probabilities: [B] float64.

    sum_i w_i log pi_theta(tau_i) then has the gradient of the clipped objective, so a caller can
    backpropagate the trajectory's log-probability block by block (weights from a no-grad pass).
    """
    leaf = trajectory_logprob(logp_new).detach().double().requires_grad_(True)
    with torch.enable_grad():
        (weights,) = torch.autograd.grad(grpo_loss(leaf, logp_old, advantages, clip_eps), leaf)
    return weights


def clip_fraction(logp_new: Tensor, logp_old: Tensor, clip_eps: float) -> Tensor:
    """Fraction of trajectory ratios outside [1 - eps, 1 + eps] (for logging)."""
    log_ratio = trajectory_logprob(logp_new.detach()).double() - trajectory_logprob(logp_old.detach()).double()
    ratio = torch.exp(log_ratio)
    return ((ratio - 1).abs() > clip_eps).double().mean()
