"""Self-Forcing++ windows: block-aligned window sampling (uniform / Beta(1, 2)), the rollout-length
schedule, and backward noise initialisation (what the window's denoising starts from, at which t,
and with grad where)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from forcing.diffusion import Conditioning
from forcing.diffusion.flow import add_noise, sigma_from_t
from forcing.diffusion.schedule import few_step_timesteps
from forcing.models import CausalWanModel
from forcing.rollout import (
    generate,
    rollout_frames_at,
    sample_window_start,
    sliced_noise,
    window_rollout,
    window_starts,
)

GRID = few_step_timesteps().tolist()  # 1000, 937.5, 833.33, 625 (float32 values)


@pytest.fixture()
def model() -> CausalWanModel:
    torch.manual_seed(0)
    m = CausalWanModel.from_preset("tiny")
    for p in m.parameters():  # Wan's init zeroes the head: randomise everything
        torch.nn.init.normal_(p, std=0.2)
    return m


def draws(mode: str, n: int = 4000) -> Counter:
    gen = torch.Generator().manual_seed(0)
    return Counter(sample_window_start(24, 6, 3, mode, gen) for _ in range(n))


def test_uniform_window_covers_every_block_aligned_start() -> None:
    starts = window_starts(24, 6, 3)
    assert starts == [0, 3, 6, 9, 12, 15, 18]
    counts = draws("uniform")
    assert sorted(counts) == starts
    for s in starts:  # each start ~ 1/7 of the draws
        assert abs(counts[s] / 4000 - 1 / 7) < 0.025


def test_beta_window_is_biased_to_early_windows() -> None:
    starts = window_starts(24, 6, 3)
    counts = draws("beta")
    n = len(starts)
    for i, s in enumerate(starts):  # P(index i) = F((i+1)/n) - F(i/n), F(u) = 1 - (1 - u)^2
        expected = (1 - i / n) ** 2 - (1 - (i + 1) / n) ** 2
        assert abs(counts[s] / 4000 - expected) < 0.025
    assert counts[0] > 2 * counts[18]
    assert sum(counts[s] for s in starts[: n // 2 + 1]) / 4000 > 0.6


def test_window_start_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        window_starts(12, 18, 3)  # window longer than the rollout
    with pytest.raises(ValueError):
        sample_window_start(24, 6, 3, "gaussian")


def test_rollout_length_schedule() -> None:
    assert rollout_frames_at(0, 60, frames_per_block=3, min_frames=12) == 60  # no schedule: constant
    kw = {"start": 12, "steps": 100, "frames_per_block": 3, "min_frames": 12}
    assert rollout_frames_at(0, 60, **kw) == 12
    assert rollout_frames_at(50, 60, **kw) == 36
    assert rollout_frames_at(51, 60, **kw) == 36  # 36.48 floored to whole blocks
    assert rollout_frames_at(100, 60, **kw) == 60
    assert rollout_frames_at(1000, 60, **kw) == 60
    values = [rollout_frames_at(i, 60, **kw) for i in range(101)]
    assert values == sorted(values) and all(v % 3 == 0 for v in values)


def record_calls(model: CausalWanModel) -> list[tuple[float, int, bool]]:
    """(t, start_frame, grad enabled) of every forward call."""
    calls: list[tuple[float, int, bool]] = []

    def hook(_module, args, kwargs):
        calls.append((float(args[1].reshape(-1)[0]), int(kwargs.get("start_frame", 0)), torch.is_grad_enabled()))

    model.register_forward_pre_hook(hook, with_kwargs=True)
    return calls


def test_backward_noise_first_restarts_from_the_blocks_own_noise(model) -> None:
    torch.manual_seed(1)
    noise, context = torch.randn(1, 4, 8, 4, 4), torch.randn(1, 8, 16)
    calls = record_calls(model)
    roll = window_rollout(model, context, sliced_noise(noise), num_frames=8, window_start=4, window_frames=4,
                          frames_per_block=2, timesteps=GRID, exit_steps=[3, 3], cache_frames=4,
                          generator=torch.Generator().manual_seed(2))
    window = noise[:, :, 4:8]
    assert sigma_from_t(GRID[0]) == 1.0
    assert roll.clean is None  # sigma 1: the clean window would be multiplied by 0
    assert torch.equal(roll.inputs, add_noise(torch.randn_like(window), window, 1.0))
    assert torch.equal(roll.inputs, window)
    # the window's blocks run the whole grid, grad only at the last step, then the context re-run
    window_calls = [c for c in calls if c[1] >= 4]
    assert window_calls == [(t, s, t == GRID[3]) for s in (4, 6) for t in [*GRID, 0.0]]
    assert not any(grad for _, s, grad in calls if s < 4)  # the rollout before the window: no grad


@pytest.mark.parametrize(("noise_step", "start"), [(1, 4), (2, 4), (3, 4), (2, 0)])
def test_backward_noise_renoises_the_rollouts_clean_window_to_the_drawn_t(model, noise_step, start) -> None:
    """Self-Forcing++ eq. 1 / Alg. 1 line 4: the window's clean frames are re-noised to the drawn
    grid point t_j, and the student denoises them from t_j to the (last) exit step."""
    torch.manual_seed(1)
    noise, context = torch.randn(1, 4, 8, 4, 4), torch.randn(1, 8, 16)
    calls = record_calls(model)
    roll = window_rollout(model, context, sliced_noise(noise), num_frames=8, window_start=start, window_frames=4,
                          frames_per_block=2, timesteps=GRID, exit_steps=[3, 3], cache_frames=4,
                          noise_step=noise_step, generator=torch.Generator().manual_seed(2),
                          backward_generator=torch.Generator().manual_seed(5))
    # the clean window is the inference rollout's own frames
    with torch.no_grad():
        calls_before = len(calls)
        ref = generate(model, noise, Conditioning(context), frames_per_block=2, timesteps=GRID, stochastic=True,
                       cache_frames=4, generator=torch.Generator().manual_seed(2))
        del calls[calls_before:]
    assert torch.equal(roll.clean, ref[:, :, start : start + 4])
    # input = add_noise(clean window, eps, sigma(t_j)), eps drawn block by block
    gen = torch.Generator().manual_seed(5)
    eps = torch.cat([torch.randn(1, 4, 2, 4, 4, generator=gen) for _ in range(2)], dim=2)
    assert torch.allclose(roll.inputs, add_noise(roll.clean, eps, sigma_from_t(GRID[noise_step])), atol=0, rtol=0)
    # the window pass: steps j..T-1 per block (grad only at the last), then the context re-run
    window_calls = calls[-2 * (len(GRID) - noise_step + 1):]
    assert window_calls == [(t, s, t == GRID[3]) for s in (start, start + 2) for t in [*GRID[noise_step:], 0.0]]
    assert roll.video.requires_grad and roll.exit_steps == [3, 3] and roll.noise_step == noise_step


def test_exit_steps_before_the_noise_step_are_clamped_to_it(model) -> None:
    """Alg. 1: a block re-noised to t_j runs steps j..T-1; a uniform exit step s < j exits at j."""
    torch.manual_seed(1)
    noise, context = torch.randn(1, 4, 8, 4, 4), torch.randn(1, 8, 16)
    calls = record_calls(model)
    roll = window_rollout(model, context, sliced_noise(noise), num_frames=8, window_start=4, window_frames=4,
                          frames_per_block=2, timesteps=GRID, exit_steps=[0, 3], cache_frames=4, noise_step=2,
                          generator=torch.Generator().manual_seed(2), backward_generator=torch.Generator().manual_seed(5))
    assert roll.exit_steps == [2, 3]
    assert [c for c in calls if c[2]] == [(GRID[2], 4, True), (GRID[3], 6, True)]


def test_backward_noise_first_with_a_partial_noise_grid(model) -> None:
    """A grid whose first sigma is below 1 re-noises the clean window to it (then runs the grid)."""
    torch.manual_seed(1)
    noise, context = torch.randn(1, 4, 6, 4, 4), torch.randn(1, 8, 16)
    grid = [800.0, 400.0]
    roll = window_rollout(model, context, sliced_noise(noise), num_frames=6, window_start=2, window_frames=4,
                          frames_per_block=2, timesteps=grid, exit_steps=[1, 1], cache_frames=4,
                          generator=torch.Generator().manual_seed(2), backward_generator=torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    eps = torch.cat([torch.randn(1, 4, 2, 4, 4, generator=gen) for _ in range(2)], dim=2)
    assert roll.clean is not None
    assert torch.equal(roll.inputs, add_noise(roll.clean, eps, 0.8))
