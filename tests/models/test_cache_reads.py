"""Cache read paths: keys stored rotated at write time, contiguous window views vs gathered copies,
memoised RoPE grid tables. Every optimised path must give bitwise the outputs of the plain one (fp32)."""

import pytest
import torch
from test_streaming import CASES, stream
from wan_testing import inputs, tiny

from forcing.models import KVCache
from forcing.models.rope import _grid_tables, apply_rope, rope_cos_sin


@pytest.fixture(scope="module")
def model():
    return tiny()


def _gathered(model, *args, **kwargs):
    """`stream` with the window read mode disabled (every read gathers the visible slots)."""
    original = KVCache.contiguous_reads
    KVCache.contiguous_reads = False  # dataclass default: new caches gather
    try:
        return stream(model, *args, **kwargs)
    finally:
        KVCache.contiguous_reads = original


@pytest.mark.parametrize("fpb,window,sink,capacity", CASES)
@torch.no_grad()
def test_window_views_equal_gathered_reads_exactly(model, monkeypatch, fpb, window, sink, capacity):
    x, t, c = inputs(frames=6)
    views = []
    window_of = KVCache.window
    monkeypatch.setattr(KVCache, "window", lambda self, *a: views.append(1) or window_of(self, *a))
    viewed, cache_v = stream(model, x, t, c, fpb, capacity, window, sink, repeats=2)
    assert views  # the first block at least is read through a view
    gathered, cache_g = _gathered(model, x, t, c, fpb, capacity, window, sink, repeats=2)
    assert torch.equal(viewed, gathered)
    assert all(
        torch.equal(a, b) for a, b in zip(cache_v.keys + cache_v.values, cache_g.keys + cache_g.values)
    )


@torch.no_grad()
def test_keys_rotated_at_write_are_bitwise_the_keys_rotated_at_read(model):
    # frames 0..5 in slots 0..5 and no eviction: "cache" positions are the absolute ones, so the two
    # modes differ only in when keys are rotated (write vs read time).
    x, t, c = inputs(frames=6)
    rotated, cache_a = stream(model, x, t, c, fpb=2, capacity=6)
    plain, cache_c = stream(model, x, t, c, fpb=2, capacity=6, positions="cache")
    assert cache_a.rotated_keys and not cache_c.rotated_keys
    assert torch.equal(rotated, plain)
    _, ph, pw = model.config.patch_size
    cos, sin = rope_cos_sin(torch.arange(6), 4 // ph, 4 // pw, model.config.head_dim)
    for k_rot, k in zip(cache_a.keys, cache_c.keys):
        assert torch.equal(k_rot.flatten(1, 2), apply_rope(k.flatten(1, 2), cos, sin))


def test_read_modes(model):
    cache = KVCache.for_model(model, 1, 4, 1, sink_frames=1)
    for s in range(3):
        cache.commit(cache.plan(s, 1))
    fp32 = torch.float32
    contiguous = cache.plan(3, 1)  # frames 0, 1, 2 in slots 0, 1, 2; the block in slot 3
    assert contiguous.window_slots == (0, 4) and contiguous.rope_positions == ((3, 1),)
    assert contiguous.rotation_positions(torch.device("cpu")).tolist() == [3]
    with torch.no_grad():
        assert cache.read_mode(contiguous, fp32) == "window"
        assert cache.read_mode(contiguous, torch.bfloat16) == "rotated"  # writing would round
    assert cache.read_mode(contiguous, fp32) == "rotated"  # grad mode: never a view
    cache.commit(contiguous)
    wrapped = cache.plan(4, 1)  # frame 4 overwrites slot 1: slots 0, 2, 3, 1 are not one run
    assert wrapped.window_slots is None
    with torch.no_grad():
        assert cache.read_mode(wrapped, fp32) == "rotated"
        cache.positions = "cache"
        assert cache.read_mode(contiguous, fp32) == "unrotated"
    assert cache.plan(4, 1).rope_positions == ((0, 4),)  # unrotated: every key is rotated per call
    with pytest.raises(ValueError, match="one run"):
        cache.window(0, wrapped)


def test_rope_grid_tables_are_memoised_outside_inference_mode():
    expected = rope_cos_sin(torch.tensor([5, 6, 0, 1, 2]), 3, 2, 16)
    _grid_tables.cache_clear()
    with torch.inference_mode():  # first built in inference mode (a generation rollout) ...
        tables = rope_cos_sin(torch.tensor([5, 6, 0, 1, 2]), 3, 2, 16)
    assert all(torch.equal(a, b) for a, b in zip(tables, expected))
    assert _grid_tables(3, 2, 16, 10000.0, torch.device("cpu")) is _grid_tables(
        3, 2, 16, 10000.0, torch.device("cpu")
    )
    x = torch.randn(1, 30, 2, 16, requires_grad=True)
    apply_rope(x, *rope_cos_sin(torch.arange(5), 3, 2, 16)).sum().backward()  # ... then saved for a backward
    assert x.grad is not None
