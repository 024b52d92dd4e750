"""Self Forcing rollout (Algorithm 1): gradients reach only exit-step outputs, never earlier
blocks through the KV cache; the TF and DF rollout modes use the real video."""

from __future__ import annotations

import pytest
import torch

from forcing.models.attention import frame_mask
from forcing.rollout import Rollout, diffusion_forcing, self_forcing
from tests.suite.helpers import read_frames

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
    """Self Forcing GAN (REFERENCE §3): the critic's t interval is the grid cell BELOW the exit
    step, [t_{s-1}, t_s] in the paper's ascending indexing; 0 after the last step (the public code's
    `denoised_timestep_to`). Was the cell above it: exit 937.5 gave (937.5, 1000)."""
    noise, context = inputs()
    roll = self_forcing(model, noise, context, frames_per_block=3, timesteps=GRID, exit_steps=[1, 1])
    assert roll.t_range() == (833.3333, 937.5)
    expected = {0: (937.5, 1000.0), 1: (833.3333, 937.5), 2: (625.0, 833.3333), 3: (0.0, 625.0)}
    for s, interval in expected.items():
        assert Rollout(roll.video, [s, s], GRID).t_range() == interval
    with pytest.raises(ValueError, match="one exit step per block"):
        self_forcing(model, noise, context, frames_per_block=3, timesteps=GRID, exit_steps=[1])


def test_train_window_keeps_the_first_block_out_of_the_last_blocks_view(model, monkeypatch) -> None:
    """Self Forcing §3.4: a cache of frames - frames_per_block frames means the last block never
    attends the first block; without it (cache_frames None) it does."""
    noise, context = inputs(frames=8)
    kw = {"frames_per_block": 2, "timesteps": GRID, "exit_steps": [1] * 4}
    windowed = read_frames(monkeypatch, lambda: self_forcing(model, noise, context, cache_frames=6, **kw))
    assert windowed[6] == {2, 3, 4, 5}  # the last block sees blocks 1 and 2, not block 0
    assert windowed[4] == {0, 1, 2, 3}  # earlier blocks still see the whole (shorter) past
    monkeypatch.undo()
    full = read_frames(monkeypatch, lambda: self_forcing(model, noise, context, **kw))
    assert full[6] == {0, 1, 2, 3, 4, 5}


def test_diffusion_forcing_rollout_takes_the_train_window(model, monkeypatch) -> None:
    """DF+DMD gets the same §3.4 window, as the block-causal mask's local_window."""
    _, context = inputs()
    seen = []
    forward = type(model).forward

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("local_window"))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "forward", spy)
    diffusion_forcing(model, torch.randn(1, 4, 6, 4, 4), context, frames_per_block=2, timesteps=GRID, local_window=4)
    assert seen == [4]
    mask = frame_mask("block_causal", 6, 2, 4)
    assert not mask[4:, :2].any() and mask[4:, 2:].all()  # the last block: not block 0, all of blocks 1-2


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
