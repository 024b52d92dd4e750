"""Cached streaming equals the masked block-causal forward; long streams stay bounded."""

import pytest
import torch
from wan_testing import inputs, tiny

from forcing.models import KVCache


@pytest.fixture(scope="module")
def model():
    return tiny()


def stream(model, x, t, c, fpb, capacity, window=None, sink=0, repeats=1, positions="absolute"):
    """Generate block by block with a cache; each block is first called `repeats - 1` times with other
    inputs (denoising steps re-writing the same slots), then with its real input."""
    b, _, frames, h, w = x.shape
    cache = KVCache.for_model(
        model, b, capacity, model.tokens_per_frame(h, w), sink_frames=sink, positions=positions
    )
    outs = []
    for s in range(0, frames, fpb):
        xb, tb = x[:, :, s : s + fpb], t[:, s : s + fpb]
        for _ in range(repeats - 1):
            model(
                torch.randn_like(xb),
                torch.rand_like(tb) * 1000,
                c,
                cache=cache,
                start_frame=s,
                local_window=window,
            )
        outs.append(model(xb, tb, c, cache=cache, start_frame=s, local_window=window))
    return torch.cat(outs, dim=2), cache


CASES = [  # (frames_per_block, local_window, sink, capacity)
    (1, None, 0, 6),  # frame-wise, full context
    (2, None, 0, 6),  # chunk-wise (2)
    (3, None, 0, 6),  # chunk-wise (3)
    (1, 3, 0, 3),  # frame-wise, window, ring wraps
    (2, 4, 0, 4),  # chunk-wise, window, ring wraps
    (1, 2, 1, 3),  # window + sink
    (2, 4, 2, 6),  # chunk-wise window + 2 sink frames
    (3, 3, 1, 4),  # window of one block + sink
]


@pytest.mark.parametrize("fpb,window,sink,capacity", CASES)
@pytest.mark.parametrize("repeats", [1, 3])
@torch.no_grad()
def test_streaming_equals_masked(model, fpb, window, sink, capacity, repeats):
    x, t, c = inputs(frames=6)
    masked = model(x, t, c, mode="block_causal", frames_per_block=fpb, local_window=window, sink_frames=sink)
    streamed, cache = stream(model, x, t, c, fpb, capacity, window, sink, repeats)
    assert (streamed - masked).abs().max() <= 1e-5
    assert len(cache.frames) <= capacity


@torch.no_grad()
def test_rolling_cache_without_window_equals_masked_window(model):
    # a cache smaller than the video evicts the oldest frames: same as a window of (capacity - sink)
    x, t, c = inputs(frames=8)
    masked = model(x, t, c, mode="block_causal", frames_per_block=2, local_window=4, sink_frames=1)
    streamed, _ = stream(model, x, t, c, fpb=2, capacity=5, window=None, sink=1)
    assert (streamed - masked).abs().max() <= 1e-5


@torch.no_grad()
def test_stream_20x_training_length_with_window_stays_bounded():
    model = tiny(num_layers=1)
    train_frames, fpb, window, sink = 6, 2, 4, 1
    frames = 20 * train_frames  # 120 frames, 60 blocks
    x, t, c = inputs(batch=1, frames=frames)
    capacity = window + sink
    streamed, cache = stream(model, x, t, c, fpb, capacity, window, sink)
    assert (
        cache.keys[0].shape[1] == capacity
        and cache.nbytes() == KVCache.for_model(model, 1, capacity, 4).nbytes()
    )
    assert cache.frames == [0] + list(range(frames - window, frames))  # sink kept, the rest rolled
    masked = model(x, t, c, mode="block_causal", frames_per_block=fpb, local_window=window, sink_frames=sink)
    assert (streamed[:, :, -6:] - masked[:, :, -6:]).abs().max() <= 1e-5
    # positions far past any RoPE table (Wan's public code has 1024 frames)
    far = model(x[:, :, :2], t[:, :2], c, cache=cache, start_frame=100_000, local_window=window)
    assert torch.isfinite(far).all()


@torch.no_grad()
def test_cache_relative_positions_equal_absolute_without_a_gap(model):
    # no sink: the window is contiguous and adjacent to the block, so relative positions are identical
    x, t, c = inputs(frames=8)
    a, _ = stream(model, x, t, c, fpb=2, capacity=4, window=4, positions="absolute")
    r, cache = stream(model, x, t, c, fpb=2, capacity=4, window=4, positions="cache")
    assert (a - r).abs().max() <= 1e-5
    assert max(cache.plan(8, 2, 4).positions(torch.device("cpu")).tolist()) < cache.capacity_frames


@torch.no_grad()
def test_cache_relative_positions_pull_the_sink_next_to_the_window(model):
    x, t, c = inputs(frames=8)
    a, _ = stream(model, x, t, c, fpb=2, capacity=5, window=4, sink=1, positions="absolute")
    r, cache = stream(model, x, t, c, fpb=2, capacity=5, window=4, sink=1, positions="cache")
    assert (a[:, :, :4] - r[:, :, :4]).abs().max() <= 1e-5  # before the gap opens: identical
    assert (a[:, :, 4:] - r[:, :, 4:]).abs().max() > 1e-4  # sink at distance 1 instead of 7
    cpu = torch.device("cpu")
    assert cache.plan(8, 2, 4).read_frames == (0, 6, 7)
    assert cache.plan(8, 2, 4).positions(cpu).tolist() == [0, 1, 2, 3, 4]  # absolute: [0, 6, 7, 8, 9]
    cache.positions = "absolute"
    assert cache.plan(8, 2, 4).positions(cpu).tolist() == [0, 6, 7, 8, 9]


@torch.no_grad()
def test_cross_attention_kv_cached_per_prompt_and_recomputed_for_a_new_context():
    model = tiny()
    x, t, c = inputs(frames=4)
    cache = KVCache.for_model(model, 2, 4, 4)
    first = model(x[:, :, :2], t[:, :2], c, cache=cache)
    assert cache.holds_context(c)
    # change the cross-attention key projection: the cached K/V of the same context are reused ...
    model.blocks[0].cross_attn.k.weight.add_(1.0)
    again = model(x[:, :, :2], t[:, :2], c, cache=cache)
    assert torch.equal(first, again)
    # ... and a different context tensor (even with equal values) is recomputed with the new weights
    c2 = c.clone()
    fresh = model(x[:, :, :2], t[:, :2], c2, cache=cache)
    assert (fresh - first).abs().max() > 1e-4 and cache.holds_context(c2)
    cache.reset()
    assert not cache.holds_context(c2) and cache.frames == []


@torch.no_grad()
def test_per_frame_timesteps_of_a_cached_block(model):
    x, t, c = inputs(frames=2)
    cache = KVCache.for_model(model, 2, 2, 4)
    same = model(x, t[:, 0], c, cache=cache)
    cache.reset()
    assert torch.equal(same, model(x, t[:, :1].expand(2, 2), c, cache=cache))


def test_streaming_under_inference_mode_with_an_inference_context(model):
    x, t, _ = inputs(frames=4)
    with torch.inference_mode():
        c = torch.randn(2, 5, 16)  # e.g. from a text encoder run in inference mode (no version counter)
        cache = KVCache.for_model(model, 2, 4, 4)
        outs = [model(x[:, :, s : s + 2], t[:, s : s + 2], c, cache=cache, start_frame=s) for s in (0, 2)]
        assert cache.holds_context(c)
        masked = model(x, t, c, mode="block_causal", frames_per_block=2)
    assert (torch.cat(outs, 2) - masked).abs().max() <= 1e-5
