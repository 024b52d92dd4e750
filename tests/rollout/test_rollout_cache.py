"""The rollouts' one KV cache factory and its one dtype rule; the one block loop's context writes."""

from __future__ import annotations

import torch

from forcing.diffusion import Conditioning
from forcing.rollout import copy_cache, generate, new_cache, self_forcing

GRID = [1000.0, 750.0, 500.0, 250.0]


def test_cache_is_shaped_for_the_block_and_cfg_rows(model) -> None:
    z = torch.randn(3, 4, 2, 4, 4)
    cache = new_cache(model, z, 6, rows=6, sink_frames=1)
    assert (cache.batch_size, cache.capacity_frames, cache.sink_frames) == (6, 6, 1)
    assert cache.tokens_per_frame == model.tokens_per_frame(4, 4)
    assert cache.keys[0].dtype == next(model.parameters()).dtype  # no autocast: the model's dtype


def test_cache_dtype_follows_autocast(model) -> None:
    """bf16-mixed training: K/V are computed in bf16, so the cache stores bf16 (half the memory)."""
    z = torch.randn(1, 4, 2, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cache = new_cache(model, z, 4)
    assert cache.keys[0].dtype == torch.bfloat16 and cache.values[-1].dtype == torch.bfloat16


def test_copy_cache_is_independent(model) -> None:
    z = torch.randn(1, 4, 2, 4, 4)
    cache = new_cache(model, z, 4)
    model(z, torch.full((1,), 0.0), torch.randn(1, 8, 16), cache=cache, start_frame=0)
    copy = copy_cache(cache)
    copy.keys[0].zero_()
    copy.slot_frames[0] = -1
    assert cache.keys[0].abs().max() > 0 and cache.slot_frames[0] == 0


def test_teacher_forced_rollout_equals_inference_on_the_ground_truth(model) -> None:
    """The block loop writes the ground truth's K/V in a TF rollout: its last block equals the
    inference of that block against a cache built from the ground truth blocks."""
    torch.manual_seed(2)
    noise, real, context = torch.randn(1, 4, 6, 4, 4), torch.randn(1, 4, 6, 4, 4), torch.randn(1, 8, 16)
    tf = self_forcing(model, noise, context, frames_per_block=2, timesteps=GRID[:1], exit_steps=[0, 0, 0],
                      context_video=real)
    sf = self_forcing(model, noise, context, frames_per_block=2, timesteps=GRID[:1], exit_steps=[0, 0, 0])
    assert torch.equal(tf.video[:, :, :2], sf.video[:, :, :2])  # block 0 sees no context
    assert (tf.video[:, :, 4:] - sf.video[:, :, 4:]).abs().max() > 1e-4  # later blocks see other K/V
    cache = new_cache(model, noise[:, :, :2], 6)
    t0 = torch.zeros(1)
    with torch.no_grad():
        for start in (0, 2):
            model(real[:, :, start : start + 2], t0, context, cache=cache, start_frame=start)
        v = model(noise[:, :, 4:], torch.full((1,), GRID[0]), context, cache=cache, start_frame=4)
    assert torch.allclose(tf.video[:, :, 4:], noise[:, :, 4:] - v, atol=1e-6)  # x0 = x_t - sigma v, sigma 1


def test_generate_streams_every_block_once(model) -> None:
    noise, context = torch.randn(2, 4, 6, 4, 4), torch.randn(2, 8, 16)
    seen: list[tuple[int, tuple[int, ...]]] = []
    video = generate(model, noise, Conditioning(context), frames_per_block=2, timesteps=GRID, stochastic=True,
                     cache_frames=4, generator=torch.Generator().manual_seed(0),
                     on_block=lambda i, x: seen.append((i, tuple(x.shape))))
    assert video.shape == noise.shape
    assert seen == [(i, (2, 4, 2, 4, 4)) for i in range(3)]
