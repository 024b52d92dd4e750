"""Self Forcing rollout (Algorithm 1): gradients reach only exit-step outputs, never earlier
blocks through the KV cache; the TF and DF rollout modes use the real video."""

from __future__ import annotations

import pytest
import torch

from forcing.rollout_train import diffusion_forcing, self_forcing

GRID = [1000.0, 937.5, 833.3333, 625.0]


def inputs(frames: int = 6):
    torch.manual_seed(1)
    noise = torch.randn(1, 4, frames, 4, 4)
    context = torch.randn(1, 8, 16)
    return noise, context


def test_block_output_has_no_gradient_into_earlier_blocks(model) -> None:
    noise, context = inputs()
    noise.requires_grad_(True)
    roll = self_forcing(model, noise, context, frames_per_block=2, timesteps=GRID, exit_steps=[0, 0, 0])
    last = roll.video[:, :, 4:6]
    (grad,) = torch.autograd.grad(last.square().sum(), noise)
    assert grad[:, :, :4].abs().max() == 0  # earlier blocks: no gradient through the cache
    assert grad[:, :, 4:].abs().max() > 0  # the block's own exit-step input does get it
    # ...although the last block really depends on the earlier blocks (through the cache)
    bumped = noise.detach().clone()
    bumped[:, :, :2] += 1.0
    again = self_forcing(model, bumped, context, frames_per_block=2, timesteps=GRID, exit_steps=[0, 0, 0])
    assert (again.video[:, :, 4:6] - last).abs().max() > 1e-4


def test_steps_before_exit_carry_no_graph(model) -> None:
    noise, context = inputs()
    noise.requires_grad_(True)
    roll = self_forcing(model, noise, context, frames_per_block=2, timesteps=GRID, exit_steps=[2, 2, 2])
    assert roll.video.requires_grad
    (grad,) = torch.autograd.grad(roll.video.sum(), noise, allow_unused=True)
    assert grad is None or grad.abs().max() == 0  # the exit step's input came from no-grad steps
    params = [p for p in model.parameters()]
    grads = torch.autograd.grad(roll.video[:, :, :2].square().sum(), params, allow_unused=True)
    assert any(g is not None and g.abs().max() > 0 for g in grads)  # the exit step trains the generator


def test_exit_steps_and_t_range(model) -> None:
    noise, context = inputs()
    roll = self_forcing(model, noise, context, frames_per_block=3, timesteps=GRID, exit_steps=[1, 1])
    assert roll.t_range() == (937.5, 1000.0)
    with pytest.raises(ValueError, match="one exit step per block"):
        self_forcing(model, noise, context, frames_per_block=3, timesteps=GRID, exit_steps=[1])


def test_teacher_forcing_rollout_uses_ground_truth_context(model) -> None:
    noise, context = inputs()
    real = torch.randn_like(noise)
    a = self_forcing(model, noise, context, frames_per_block=2, timesteps=GRID, exit_steps=[0] * 3, context_video=real)
    other = real.clone()
    other[:, :, :2] += 1.0
    b = self_forcing(model, noise, context, frames_per_block=2, timesteps=GRID, exit_steps=[0] * 3, context_video=other)
    assert torch.equal(a.video[:, :, :2], b.video[:, :, :2])  # block 0 never sees context
    assert (a.video[:, :, 2:] - b.video[:, :, 2:]).abs().max() > 1e-4  # later blocks see the GT


def test_diffusion_forcing_rollout_is_one_parallel_forward(model) -> None:
    _, context = inputs()
    real = torch.randn(2, 4, 6, 4, 4)
    gen = torch.Generator().manual_seed(0)
    roll = diffusion_forcing(model, real, context.expand(2, -1, -1), frames_per_block=2, timesteps=GRID,
                             generator=gen)
    assert roll.video.shape == real.shape and roll.video.requires_grad
    assert len(roll.exit_steps) == 3
