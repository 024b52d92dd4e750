"""KVCache bookkeeping: slots from start_frame, sink never evicted, oldest evicted, typed object."""

import dataclasses

import pytest
import torch
from wan_testing import inputs, tiny

from forcing.models import KVCache


@pytest.fixture(scope="module")
def model():
    return tiny()


def test_for_model_shapes_and_typed(model):
    cache = KVCache.for_model(model, 3, 5, 7, sink_frames=1, dtype=torch.bfloat16)
    assert dataclasses.is_dataclass(cache)
    assert len(cache.keys) == len(cache.values) == model.config.num_layers
    assert cache.keys[0].shape == (3, 5, 7, model.config.num_heads, model.config.head_dim)
    assert cache.keys[0].dtype == torch.bfloat16
    assert (cache.batch_size, cache.capacity_frames, cache.tokens_per_frame, cache.window_frames) == (
        3,
        5,
        7,
        4,
    )
    assert cache.frames == [] and cache.cross_keys == [None] * model.config.num_layers


def test_slots_sink_and_ring(model):
    cache = KVCache.for_model(model, 1, 4, 1, sink_frames=1)
    assert [cache.slot_of(f) for f in range(8)] == [0, 1, 2, 3, 1, 2, 3, 1]
    for s in range(10):  # frame-wise stream of 10 frames
        cache.commit(cache.plan(s, 1))
    assert cache.frames == [0, 7, 8, 9]  # sink kept, oldest evicted


def test_repeated_calls_rewrite_the_same_slots(model):
    cache = KVCache.for_model(model, 1, 6, 1)
    first = cache.plan(2, 2)
    cache.commit(first)
    again = cache.plan(2, 2)
    assert again.write_slots == first.write_slots == ((2, 2),)
    assert again.read_frames == ()  # the block's own (stale) slots are never read
    cache.commit(again)
    assert cache.frames == [2, 3]


def test_plan_visibility_window_and_sink(model):
    cache = KVCache.for_model(model, 1, 7, 1, sink_frames=2)
    for s in range(0, 10, 2):
        cache.commit(cache.plan(s, 2))
    plan = cache.plan(10, 2, local_window=4)
    assert plan.read_frames == (0, 1, 8, 9)
    assert plan.positions(torch.device("cpu")).tolist() == [0, 1, 8, 9, 10, 11]
    assert cache.plan(10, 2).read_frames == (0, 1, 7, 8, 9)  # no window: the whole ring
    assert plan.read_slots == ((0, 2), (3, 2))  # slot(f) = 2 + (f - 2) % 5 for f >= 2
    for s in (10, 12):
        cache.commit(cache.plan(s, 2))
    wrapped = cache.plan(14, 2)  # frames 11, 12, 13 sit in slots 6, 2, 3: the read wraps the ring
    assert wrapped.read_frames == (0, 1, 11, 12, 13)
    assert wrapped.read_slots == ((0, 2), (6, 1), (2, 2))
    assert wrapped.write_slots == ((4, 2),)


def test_plan_errors(model):
    cache = KVCache.for_model(model, 1, 4, 1, sink_frames=1)
    with pytest.raises(ValueError, match="does not fit"):
        cache.plan(0, 4)
    with pytest.raises(ValueError, match="exceeds the cache window"):
        cache.plan(0, 2, local_window=4)
    with pytest.raises(ValueError, match="shorter than the block"):
        cache.plan(0, 2, local_window=1)
    with pytest.raises(ValueError):
        KVCache.for_model(model, 1, 2, 1, sink_frames=2)
    with pytest.raises(ValueError):
        KVCache.for_model(model, 1, 2, 1, positions="relative")


def test_read_is_a_copy_and_written_kv_are_detached(model):
    x, t, c = inputs(frames=4)
    cache = KVCache.for_model(model, 2, 4, 4)
    model(x[:, :, :2], t[:, :2], c, cache=cache)  # grad mode
    assert all(not k.requires_grad and k.grad_fn is None for k in cache.keys + cache.values)
    assert all(k is not None and not k.requires_grad for k in cache.cross_keys)
    plan = cache.plan(2, 2)
    k, v = cache.read(0, plan)
    assert k.shape == (2, 2 * 4, model.config.num_heads, model.config.head_dim)
    assert k.untyped_storage().data_ptr() != cache.keys[0].untyped_storage().data_ptr()
    assert torch.equal(k, cache.keys[0][:, :2].flatten(1, 2))


def test_reset_keeps_buffers(model):
    x, t, c = inputs(frames=2)
    cache = KVCache.for_model(model, 2, 2, 4)
    ptr = cache.keys[0].data_ptr()
    with torch.no_grad():
        model(x, t, c, cache=cache)
    cache.reset()
    assert cache.frames == [] and cache.context is None and cache.keys[0].data_ptr() == ptr


def test_cache_shape_mismatch_is_an_error(model):
    x, t, c = inputs(frames=2)
    with pytest.raises(ValueError, match="cache shaped"):
        model(x, t, c, cache=KVCache.for_model(model, 1, 2, 4))
    with pytest.raises(ValueError, match="sink_frames"):
        model(x, t, c, cache=KVCache.for_model(model, 2, 3, 4, sink_frames=1), sink_frames=2)


@pytest.mark.gpu
@torch.no_grad()
def test_cached_forward_has_no_host_device_sync():
    model = tiny().cuda()
    x, t, c = (a.cuda() for a in inputs(frames=6))
    cache = KVCache.for_model(model, 2, 4, 4, sink_frames=1)
    model(x[:, :, :2], t[:, :2], c, cache=cache)  # warm-up (lazy inits)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for s in (2, 4):
            model(x[:, :, s : s + 2], t[:, s : s + 2], c, cache=cache, start_frame=s, local_window=2)
    finally:
        torch.cuda.set_sync_debug_mode("default")
