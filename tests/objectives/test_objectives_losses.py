"""Flow matching, ODE regression and consistency losses."""

import pytest
import torch

from forcing.diffusion import (
    Conditioning,
    Denoiser,
    add_noise,
    euler_timesteps,
    sigma_from_t,
    velocity_target,
    wan_timestep_weight,
    x0_from_velocity,
)
from forcing.objectives import (
    consistency_loss,
    flow_matching_loss,
    ode_regression_loss,
    sample_consistency_t,
    teacher_euler_step,
)


def test_flow_matching_zero_for_exact_velocity():
    x0, noise = torch.randn(2, 3, 4, 2, 2), torch.randn(2, 3, 4, 2, 2)
    t = torch.tensor([300.0, 800.0])

    def exact(x_t, t):  # v = (x_t - x0) / sigma is eps - x0 on the path
        return (x_t - x0) / sigma_from_t(t).reshape(-1, 1, 1, 1, 1)

    assert flow_matching_loss(exact, x0, t, noise).item() == pytest.approx(0.0, abs=1e-8)
    assert flow_matching_loss(lambda x_t, t: torch.zeros_like(x_t), x0, t, noise).item() > 0.1


def test_flow_matching_weight_and_mask():
    b, f = 2, 3
    x0, noise = torch.randn(b, 2, f, 2, 2), torch.randn(b, 2, f, 2, 2)
    c = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # per-frame error -> squared error c^2

    def off(x_t, t):
        return velocity_target(x0, noise) + c.reshape(b, 1, f, 1, 1)

    w = torch.tensor([[1.0, 0.5, 2.0], [1.0, 1.0, 3.0]])
    m = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    got = flow_matching_loss(off, x0, torch.tensor([500.0, 500.0]), noise, weight=w, mask=m)
    assert got.item() == pytest.approx(float((w * m * c**2).sum() / m.sum()), rel=1e-5)
    per_sample = flow_matching_loss(
        off, x0, torch.tensor([500.0, 500.0]), noise, weight=torch.tensor([2.0, 0.0])
    )
    assert per_sample.item() == pytest.approx(float(2.0 * (c[0] ** 2).sum() / 6), rel=1e-5)


def test_flow_matching_with_denoiser_trains_the_model(toys):
    net = toys.Backbone()
    x0, noise = torch.randn(2, 2, 3, 2, 2), torch.randn(2, 2, 3, 2, 2)
    loss = flow_matching_loss(
        Denoiser(net), x0, torch.rand(2, 3) * 1000, noise, Conditioning(torch.randn(2, 5, 4))
    )
    loss.backward()
    assert torch.isfinite(loss) and net.embed.weight.grad.abs().sum() > 0


def test_ode_regression_loss():
    target = torch.randn(2, 2, 3, 2, 2)
    pred = target.clone().requires_grad_()
    assert ode_regression_loss(pred, target).item() == 0.0
    pred2 = (target + 1).requires_grad_()
    loss = ode_regression_loss(pred2, target.requires_grad_())
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert pred2.grad is not None and target.grad is None


def test_consistency_zero_for_exact_teacher_and_boundary(toys):
    x0, eps = torch.randn(2, 2, 3, 2, 2), torch.randn(2, 2, 3, 2, 2)
    grid = euler_timesteps(48, 5.0)
    for n in (0, 20, 47):  # n = 47 steps to t = 0: the boundary
        t_n, t_next = grid[n].expand(2), grid[n + 1].expand(2)
        x_tn = add_noise(x0, eps, sigma_from_t(t_n))
        v_teacher = (x_tn - x0) / sigma_from_t(t_n).reshape(-1, 1, 1, 1, 1)  # exact PF-ODE field
        x_next = teacher_euler_step(x_tn, v_teacher, t_n, t_next)
        assert torch.allclose(x_next, add_noise(x0, eps, sigma_from_t(t_next)), atol=1e-5)
        v_target = (x_next - x0) / sigma_from_t(t_next).clamp_min(1e-6).reshape(-1, 1, 1, 1, 1)
        target_x0 = x0_from_velocity(x_next, v_target, sigma_from_t(t_next))
        assert consistency_loss(x0.clone(), target_x0).item() == pytest.approx(0.0, abs=1e-8)
    # boundary condition f(x, 0) = x holds for any network under x0 = x - sigma v
    den, x = Denoiser(toys.Backbone()), torch.randn(2, 2, 3, 2, 2)
    assert torch.equal(den.x0(x, torch.zeros(2), Conditioning(torch.randn(2, 5, 4))), x)


def test_consistency_gradient_only_to_student(toys):
    student, target = toys.Backbone(seed=1), toys.Backbone(seed=2)
    cond = Conditioning(torch.randn(2, 5, 4))
    x = torch.randn(2, 2, 3, 2, 2)
    s_x0 = Denoiser(student).x0(x, torch.tensor([600.0, 600.0]), cond)
    t_x0 = Denoiser(target).x0(x, torch.tensor([500.0, 500.0]), cond)  # graph kept on purpose
    loss = consistency_loss(s_x0, t_x0)
    loss.backward()
    assert loss.item() > 0 and student.head.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in target.parameters())
    huber = consistency_loss(s_x0.detach(), t_x0, huber_c=0.01)
    assert huber.item() > 0 and consistency_loss(t_x0, t_x0, huber_c=0.01).item() == 0.0


def test_sample_consistency_pairs_are_adjacent():
    grid = euler_timesteps(48, 5.0)
    t_n, t_next = sample_consistency_t(64, grid, generator=torch.Generator().manual_seed(0))
    idx = (grid.reshape(1, -1) == t_n.reshape(-1, 1)).float().argmax(1)
    assert torch.equal(grid[idx + 1], t_next)
    t_b, t_b_next = sample_consistency_t(4, grid, num_blocks=3, frames_per_block=2)
    assert t_b.shape == (4, 6) and torch.equal(t_b[:, ::2], t_b[:, 1::2]) and bool((t_b_next < t_b).all())


def test_flow_matching_precomputed_velocity_wan_weighting_and_argument_order():
    x0, noise = torch.randn(2, 2, 3, 2, 2), torch.randn(2, 2, 3, 2, 2)
    t = torch.tensor([[100.0, 500.0, 900.0], [500.0, 500.0, 990.0]])
    v = velocity_target(x0, noise) + 1.0  # per-frame squared error exactly 1
    plain = flow_matching_loss(v, x0, t, noise)
    assert plain.item() == pytest.approx(1.0)
    wan = flow_matching_loss(v, x0, t, noise, weighting="wan", shift=5.0)
    assert wan.item() == pytest.approx(wan_timestep_weight(t, 5.0).mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match="order"):
        flow_matching_loss(v, x0, noise, t)
