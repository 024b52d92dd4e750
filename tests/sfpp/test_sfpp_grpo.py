"""Self-Forcing++ GRPO stage (A.6, eq. 7): group advantages, Gaussian step log-probabilities, the
clipped objective, the optical-flow smoothness reward, and the sampler as a replayable policy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from forcing.diffusion import Conditioning
from forcing.diffusion.schedule import few_step_timesteps
from forcing.objectives.grpo import (
    clip_fraction,
    gaussian_kl,
    gaussian_logprob,
    group_advantages,
    grpo_logprob_weights,
    grpo_loss,
    trajectory_logprob,
)
from forcing.reward import flow_smoothness_reward, mean_flow_magnitude
from forcing.rollout import generate, policy_logprobs, sample_trajectory, sliced_noise

GRID = few_step_timesteps().tolist()


# ---------------------------------------------------------------------- advantages and log-probs
def test_group_advantages_are_standardised_per_group() -> None:
    rewards = torch.tensor([1.0, 2.0, 6.0, -3.0, -3.0, 0.0, 5.0, 5.0, 5.0])
    adv = group_advantages(rewards, group_size=3).reshape(3, 3)
    assert torch.allclose(adv[:2].mean(1), torch.zeros(2, dtype=adv.dtype), atol=1e-12)
    assert torch.allclose(adv[:2].std(1, unbiased=False), torch.ones(2, dtype=adv.dtype), atol=1e-6)
    assert adv[0].argmax() == 2 and adv[0].argmin() == 0  # order within the group is kept
    assert torch.equal(adv[2], torch.zeros(3, dtype=adv.dtype))  # a tied group carries no signal
    shifted = group_advantages(rewards + torch.tensor([0.0] * 3 + [100.0] * 3 + [0.0] * 3), 3)
    assert torch.allclose(shifted, adv.reshape(-1))  # groups are normalised independently
    with pytest.raises(ValueError):
        group_advantages(rewards, group_size=4)


def test_gaussian_logprob_and_kl_match_torch_distributions() -> None:
    torch.manual_seed(0)
    x, mean, mean_q = torch.randn(3, 4, 2, 5, 5), torch.randn(3, 4, 2, 5, 5), torch.randn(3, 4, 2, 5, 5)
    std = 0.625
    exact = Normal(mean.double(), std).log_prob(x.double()).sum((1, 2, 3, 4))
    assert torch.allclose(gaussian_logprob(x, mean, std), exact)
    assert torch.allclose(gaussian_logprob(x, mean, std, reduce="mean"), exact / (4 * 2 * 5 * 5))
    per_sample_std = torch.tensor([0.2, 0.5, 0.9])
    exact = Normal(mean.double(), per_sample_std.double().view(3, 1, 1, 1, 1)).log_prob(x.double()).sum((1, 2, 3, 4))
    assert torch.allclose(gaussian_logprob(x, mean, per_sample_std), exact)
    kl = kl_divergence(Normal(mean.double(), std), Normal(mean_q.double(), std)).sum((1, 2, 3, 4))
    assert torch.allclose(gaussian_kl(mean, mean_q, std), kl)
    assert torch.equal(gaussian_kl(mean, mean, std), torch.zeros(3, dtype=torch.float64))


# ---------------------------------------------------------------------- the clipped objective
def test_clipped_objective_inside_and_outside_the_trust_region() -> None:
    eps = 0.2
    adv = torch.tensor([1.0, -1.0])
    old = torch.zeros(2)
    # inside [0.8, 1.2]: the clipped objective is the plain ratio objective, gradient included
    new = torch.log(torch.tensor([1.1, 0.9])).requires_grad_(True)
    loss = grpo_loss(new, old, adv, eps)
    assert math.isclose(float(loss), -(1.1 * 1 + 0.9 * -1) / 2, rel_tol=1e-6)
    (g,) = torch.autograd.grad(loss, new)
    assert torch.allclose(g.double(), torch.tensor([-1.1 / 2, 0.9 / 2], dtype=torch.float64), atol=1e-6)
    # outside: r A is clipped where moving further would help (r 1.5, A > 0; r 0.5, A < 0) ...
    new = torch.log(torch.tensor([1.5, 0.5, 0.5, 1.5])).requires_grad_(True)
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    loss = grpo_loss(new, torch.zeros(4), adv, eps)
    # ... and kept unclipped (pessimistic) where the ratio moved against the advantage
    assert math.isclose(float(loss), -(1.2 - 0.8 + 0.5 - 1.5) / 4, rel_tol=1e-6)
    (g,) = torch.autograd.grad(loss, new)
    assert g[0] == 0 and g[1] == 0  # clipped entries carry no gradient
    assert g[2] != 0 and g[3] != 0
    assert float(clip_fraction(new, torch.zeros(4), eps)) == 1.0


def test_trajectory_ratio_is_the_exp_of_the_summed_step_differences() -> None:
    """Self-Forcing++ A.6 / eq. 7: log pi(tau) is the SUM of the per-step log-probabilities (the
    sampler is a Markov chain), so a trajectory's ratio is exp(sum_k (logp_new - logp_old)_k), one
    ratio per trajectory, clipped once (not a mean of per-step ratios)."""
    new = torch.log(torch.tensor([[1.05, 1.1], [0.95, 1.0]]))  # per-step ratios of two trajectories
    old = torch.zeros(2, 2)
    assert torch.allclose(trajectory_logprob(new), new.sum(1))
    ratio = torch.tensor([1.05 * 1.1, 0.95 * 1.0], dtype=torch.float64)  # exp(sum of differences)
    adv = torch.tensor([2.0, -1.0])
    expected = -(min(ratio[0] * 2, 1.1 * 2) + min(ratio[1] * -1, 0.95 * -1)) / 2  # clip 0.1 bites trajectory 0
    assert math.isclose(float(grpo_loss(new, old, adv, 0.1)), float(expected), rel_tol=1e-6)
    assert math.isclose(float(grpo_loss(new, old, adv, 0.1)), float(grpo_loss(new.sum(1), old.sum(1), adv, 0.1)))
    # per-step ratios would stay inside the trust region (1.05, 1.1 <= 1.1): the trajectory's does not
    assert float(clip_fraction(new, old, 0.1)) == 0.5
    # 3 steps, each inside the clip range, whose product leaves it: clipped as a whole
    steps = torch.log(torch.full((1, 3), 1.08)).requires_grad_(True)
    loss = grpo_loss(steps, torch.zeros(1, 3), torch.tensor([1.0]), 0.2)
    assert math.isclose(float(loss), -1.2, rel_tol=1e-6)
    (g,) = torch.autograd.grad(loss, steps)
    assert torch.equal(g, torch.zeros_like(g))


def test_blockwise_weights_give_the_gradient_of_the_trajectory_objective() -> None:
    """eq. 7 backpropagated block by block: sum_i w_i log pi(tau_i), w = d loss / d log pi(tau),
    has the gradient of the clipped trajectory objective."""
    torch.manual_seed(0)
    theta = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)  # [B, blocks, steps] log-probs
    old = theta.detach() + 0.1 * torch.randn(4, 3, 2, dtype=torch.float64)
    adv = torch.tensor([1.0, -0.5, 2.0, -1.5])
    (direct,) = torch.autograd.grad(grpo_loss(theta, old, adv, 0.2), theta)
    weights = grpo_logprob_weights(theta.detach(), old, adv, 0.2)
    blockwise = torch.zeros_like(theta)
    for b in range(3):  # one backward per block, as GRPOStage.grpo_update does
        (g,) = torch.autograd.grad((weights * theta[:, b].sum(1)).sum(), theta)
        blockwise += g
    assert torch.allclose(blockwise, direct, atol=1e-12)
    assert (direct == 0).any() and (direct != 0).any()  # some trajectories clipped, some not


# ---------------------------------------------------------------------- the reward
def moving_square(speeds: list[int], size: int = 32, side: int = 8) -> torch.Tensor:
    """A white square on black moving right by `speeds[i]` pixels per frame: [1, 3, F, H, W] in [-1, 1]."""
    frames, x = [], 2
    for i in range(len(speeds) + 1):
        frame = -torch.ones(3, size, size)
        frame[:, 12 : 12 + side, x : x + side] = 1.0
        frames.append(frame)
        if i < len(speeds):
            x += speeds[i]
    return torch.stack(frames, dim=1).unsqueeze(0)


@pytest.mark.parametrize("kind", ["variance", "second_difference"])
def test_reward_prefers_smooth_motion(kind) -> None:
    smooth = moving_square([2] * 11)  # constant speed
    jitter = moving_square([1, 3] * 5 + [2])  # same distance, alternating speeds
    video = torch.cat([smooth, jitter])
    magnitude = mean_flow_magnitude(video)
    assert magnitude.shape == (2, 11) and (magnitude > 0).all()
    reward = flow_smoothness_reward(video, kind=kind)
    assert reward.shape == (2,) and reward[0] > reward[1] and reward[0] <= 0
    assert float(reward[1]) < 5 * float(reward[0]) - 1e-3  # clearly separated, not by a hair


def test_reward_of_a_static_video_is_maximal() -> None:
    static = moving_square([0] * 6)
    assert np.isclose(float(flow_smoothness_reward(static)[0]), 0.0)


# ---------------------------------------------------------------------- the sampler as a policy
def test_trajectory_is_the_inference_sampler_and_replays_to_ratio_one(model) -> None:
    torch.manual_seed(1)
    noise, context = torch.randn(2, 4, 8, 4, 4), torch.randn(2, 8, 16)
    traj = sample_trajectory(model, context, sliced_noise(noise), num_frames=8, frames_per_block=2, timesteps=GRID,
                             cache_frames=4, generator=torch.Generator().manual_seed(2), reduce="sum")
    ref = generate(model, noise, Conditioning(context), frames_per_block=2, timesteps=GRID, stochastic=True,
                   cache_frames=4, generator=torch.Generator().manual_seed(2))
    assert torch.equal(traj.video, ref)  # the policy is the inference rollout
    assert traj.logp_old.shape == (2, 4, 3) and len(traj.states) == 4
    assert torch.equal(traj.states[1][0], noise[:, :, 2:4])
    # log N(x_{k+1}; (1 - s') x0, s'^2 I): the residual is s' eps, so logp + D log s' + D/2 log 2 pi
    # = -|eps|^2 / 2, about -D/2 (chi-square with D = 128 degrees of freedom)
    d = 4 * 2 * 4 * 4
    for k in range(3):
        sigma = GRID[k + 1] / 1000
        chi2 = -2 * (traj.logp_old[:, :, k] + d * math.log(sigma) + d / 2 * math.log(2 * math.pi)) / d
        assert ((chi2 - 1).abs() < 0.5).all()
    # replay with grad: the same log-probs (ratio 1) and a gradient into the generator
    params = list(model.parameters())
    total = 0.0
    for part in policy_logprobs(model, context, traj, cache_frames=4, reduce="sum", reference=model):
        assert torch.allclose(part.logp, traj.logp_old[:, part.block], rtol=0, atol=1e-6)
        assert torch.allclose(part.kl, torch.zeros_like(part.kl))  # reference = the policy: KL 0
        grads = torch.autograd.grad(part.logp.sum(), params, allow_unused=True)
        total += sum(float(g.abs().sum()) for g in grads if g is not None)
    assert total > 0
    # another policy gives other log-probs (ratio != 1)
    with torch.no_grad():
        model.head.head.weight.add_(0.05)
        parts = list(policy_logprobs(model, context, traj, cache_frames=4, reduce="sum"))
    assert (torch.stack([p.logp for p in parts], 1) - traj.logp_old).abs().max() > 1e-3
