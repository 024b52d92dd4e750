"""Shift, few-step grid, Euler grid, timestep sampling and Wan's training weighting."""

import pytest
import torch

from forcing.diffusion import (
    euler_timesteps,
    few_step_timesteps,
    sample_block_t,
    sample_training_t,
    shift_sigma,
    training_grid,
    wan_timestep_weight,
)


def test_shift_sigma_formula():
    s = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert torch.allclose(shift_sigma(s, 1.0), s)
    assert torch.allclose(shift_sigma(s, 5.0), torch.tensor([0.0, 0.625, 2.5 / 3, 1.0]))


def test_few_step_grid_sigmas():
    t = few_step_timesteps()
    assert torch.allclose(t / 1000, torch.tensor([1.0, 0.9375, 0.8333333, 0.625]), atol=1e-6)


def test_euler_grid_contains_few_step_grid_exactly():
    grid = euler_timesteps(48, 5.0)
    assert grid.shape == (49,) and grid[0] == 1000 and grid[-1] == 0
    assert bool((grid[1:] < grid[:-1]).all())
    assert torch.equal(grid[[0, 12, 24, 36]], few_step_timesteps((1000, 750, 500, 250), 5.0))


def test_shift_8_ode_grid_misses_student_grid():
    # The public Self Forcing ODE script's shift 8: index 12 is sigma 0.96, not 0.9375.
    wrong = euler_timesteps(48, 8.0)[[0, 12, 24, 36]]
    assert not torch.allclose(wrong, few_step_timesteps(), atol=1.0)
    assert wrong[1].item() == pytest.approx(960.0, abs=1e-3)


def test_sample_training_t_range_shift_and_reproducibility():
    t = sample_training_t(4000, shift=5.0, generator=torch.Generator().manual_seed(1))
    assert t.shape == (4000,) and t.min() >= 20 and t.max() <= 980
    # shift 5 maps the uniform median 0.5 to 0.833
    assert 790 < t.median().item() < 870
    t2 = sample_training_t(4000, shift=5.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(t, t2)
    unshifted = sample_training_t(4000, shift=1.0, generator=torch.Generator().manual_seed(1))
    assert 450 < unshifted.median().item() < 550


def test_sample_block_t_is_constant_within_blocks():
    t = sample_block_t(8, num_blocks=5, frames_per_block=3, generator=torch.Generator().manual_seed(0))
    assert t.shape == (8, 15)
    blocks = t.reshape(8, 5, 3)
    assert torch.equal(blocks, blocks[:, :, :1].expand_as(blocks))
    assert (blocks[:, :, 0].std(dim=1) > 0).all()  # independent across blocks
    grid = training_grid(5.0)
    assert torch.isin(t, grid).all()
    few = few_step_timesteps()
    t4 = sample_block_t(8, 5, 1, grid=few, generator=torch.Generator().manual_seed(0))
    assert torch.isin(t4, few).all()
    low = sample_block_t(64, 2, 1, min_t=0.0, max_t=500.0, generator=torch.Generator().manual_seed(0))
    assert bool((low <= 500).all()) and torch.isin(low, grid).all()


def test_wan_timestep_weight_is_bell_normalised_and_per_element():
    grid = training_grid(5.0)
    w = wan_timestep_weight(grid, 5.0)
    assert w.mean().item() == pytest.approx(1.0, abs=1e-4)
    assert w.min().item() == pytest.approx(0.0, abs=1e-6)
    assert abs(grid[w.argmax()].item() - 500) < 2.0
    # nearest-grid lookup, per element, shape preserved
    t = torch.stack([grid[10] + 1e-3, grid[500] - 1e-3]).reshape(2, 1).expand(2, 3)
    got = wan_timestep_weight(t, 5.0)
    assert got.shape == (2, 3)
    assert torch.equal(got[:, 0], torch.stack([w[10], w[500]]))
    assert got[0, 0] != got[1, 0]
