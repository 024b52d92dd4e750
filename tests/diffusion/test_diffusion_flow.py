"""The flow path and the conversions between velocity, x0 and noise."""

import torch

from forcing.diffusion import (
    add_noise,
    eps_from_velocity,
    sigma_from_t,
    velocity_from_x0,
    velocity_target,
    x0_from_velocity,
)


def test_add_noise_endpoints_and_per_frame_broadcast():
    x0, eps = torch.randn(2, 3, 4, 2, 2), torch.randn(2, 3, 4, 2, 2)
    assert torch.equal(add_noise(x0, eps, torch.zeros(2)), x0)
    assert torch.equal(add_noise(x0, eps, torch.ones(2)), eps)
    sigma = torch.tensor([[0.0, 1.0, 0.5, 0.25], [1.0, 0.0, 0.0, 0.0]])
    x_t = add_noise(x0, eps, sigma)
    assert torch.equal(x_t[0, :, 0], x0[0, :, 0]) and torch.equal(x_t[0, :, 1], eps[0, :, 1])
    assert torch.allclose(x_t[0, :, 3], 0.75 * x0[0, :, 3] + 0.25 * eps[0, :, 3])
    assert torch.equal(x_t[1, :, 0], eps[1, :, 0])


def test_conversions_round_trip():
    x0, eps = torch.randn(3, 2, 5, 4, 4), torch.randn(3, 2, 5, 4, 4)
    t = torch.tensor([[900.0] * 5, [500.0] * 5, [30.0, 200.0, 400.0, 600.0, 999.0]])
    sigma = sigma_from_t(t)
    x_t, v = add_noise(x0, eps, sigma), velocity_target(x0, eps)
    assert torch.equal(v, eps - x0)
    assert torch.allclose(x0_from_velocity(x_t, v, sigma), x0, atol=1e-5)
    assert torch.allclose(eps_from_velocity(x_t, v, sigma), eps, atol=1e-5)
    assert torch.allclose(velocity_from_x0(x_t, x0, sigma), v, atol=1e-4)


def test_bf16_inputs_keep_dtype():
    x0 = torch.randn(1, 2, 1, 2, 2).bfloat16()
    x_t = add_noise(x0, torch.randn_like(x0), torch.tensor([0.3]))
    assert x_t.dtype == torch.bfloat16
    assert x0_from_velocity(x_t, torch.randn_like(x_t), torch.tensor([0.3])).dtype == torch.bfloat16
