"""Euler and few-step samplers on a toy with a known exact velocity field."""

import torch
from torch import nn

from forcing.diffusion import (
    Conditioning,
    Denoiser,
    add_noise,
    euler_timesteps,
    few_step_timesteps,
    sigma_from_t,
)
from forcing.rollout import euler_sample, few_step_sample


def _setup(point_mass, b=2):
    target = torch.randn(2, 3, 2, 2, generator=torch.Generator().manual_seed(3))
    model = point_mass(target)
    cond = Conditioning(torch.zeros(b, 3, 4))
    noise = torch.randn(b, 2, 3, 2, 2, generator=torch.Generator().manual_seed(4))
    return model, cond, noise, target.expand(b, -1, -1, -1, -1).clone()


def test_euler_reaches_point_mass_and_follows_straight_path(point_mass):
    model, cond, noise, x0 = _setup(point_mass)
    grid = euler_timesteps(48, 5.0)
    out, states = euler_sample(Denoiser(model), noise, cond, grid, return_indices=(0, 12, 24, 36, 48))
    assert torch.allclose(out, x0, atol=1e-4)
    assert torch.equal(states[-1], out) and torch.equal(states[0], noise)
    for i, s in zip((12, 24, 36), states[1:4]):
        assert torch.allclose(s, add_noise(x0, noise, sigma_from_t(grid[i])), atol=1e-4)
    assert len(model.calls) == 48


def test_euler_with_per_frame_timesteps(point_mass):
    model, cond, noise, x0 = _setup(point_mass)
    grid = euler_timesteps(8, 3.0)
    per_frame = torch.stack([grid, grid, torch.linspace(1000, 0, 9)], dim=-1)  # [S, F]
    per_step = per_frame.unsqueeze(1).expand(9, 2, 3)  # [S, B, F]
    out = euler_sample(Denoiser(model), noise, cond, per_step)
    assert model.calls[0]["t"].shape == (2, 3)
    assert torch.allclose(out, x0, atol=1e-4)


def test_euler_is_wrong_for_a_wrong_field(point_mass):
    model, cond, noise, x0 = _setup(point_mass)
    model.target.add_(1.0)
    out = euler_sample(Denoiser(model), noise, cond, euler_timesteps(8))
    assert not torch.allclose(out, x0, atol=1e-2)


def test_few_step_renoises_with_fresh_noise(point_mass):
    model, cond, noise, x0 = _setup(point_mass)
    grid = few_step_timesteps()
    out, inputs = few_step_sample(
        Denoiser(model), noise, cond, grid, generator=torch.Generator().manual_seed(7), return_inputs=True
    )
    assert torch.allclose(out, x0, atol=1e-4)
    g = torch.Generator().manual_seed(7)
    assert torch.equal(inputs[0], noise)
    for i in range(1, 4):
        fresh = torch.randn(noise.shape, generator=g)
        assert torch.allclose(inputs[i], add_noise(x0, fresh, sigma_from_t(grid[i])), atol=1e-4)
        assert not torch.allclose(inputs[i], add_noise(x0, noise, sigma_from_t(grid[i])), atol=1e-2)


def test_few_step_exit_step_carries_grad_only_there(point_mass):
    model, cond, noise, _ = _setup(point_mass)
    scale = nn.Parameter(torch.ones(()))

    class Scaled(nn.Module):
        def forward(self, x, t, context, **kw):
            return scale * model(x, t, context, **kw)

    out, inputs = few_step_sample(
        Denoiser(Scaled()), noise, cond, few_step_timesteps(), exit_step=2, return_inputs=True
    )
    assert len(inputs) == 3 and out.requires_grad
    assert not any(x.requires_grad for x in inputs)
    out.sum().backward()
    assert scale.grad is not None and scale.grad.abs() > 0
