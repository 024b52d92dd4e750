"""Causality: outputs of a block never depend on later blocks, in every causal mode."""

import pytest
import torch
from wan_testing import inputs, tiny

from forcing.models import KVCache


@pytest.fixture(scope="module")
def model():
    return tiny()


def _perturb_from(x, t, first_frame):
    x2, t2 = x.clone(), t.clone()
    x2[:, :, first_frame:] = torch.randn_like(x2[:, :, first_frame:])
    t2[:, first_frame:] = torch.rand_like(t2[:, first_frame:]) * 1000
    return x2, t2


@pytest.mark.parametrize(
    "fpb,window,sink", [(1, None, 0), (2, None, 0), (3, None, 0), (1, 2, 0), (2, 4, 0), (1, 2, 1), (2, 2, 2)]
)
@torch.no_grad()
def test_block_causal_future_does_not_leak(model, fpb, window, sink):
    x, t, c = inputs(frames=6)
    kw = dict(mode="block_causal", frames_per_block=fpb, local_window=window, sink_frames=sink)
    out = model(x, t, c, **kw)
    for k in range(6 // fpb - 1):
        cut = (k + 1) * fpb
        x2, t2 = _perturb_from(x, t, cut)
        out2 = model(x2, t2, c, **kw)
        assert torch.equal(out[:, :, :cut], out2[:, :, :cut]), f"blocks <= {k} changed"
        assert (out[:, :, cut:] - out2[:, :, cut:]).abs().max() > 1e-3


@torch.no_grad()
def test_bidirectional_is_not_causal(model):
    x, t, c = inputs(frames=4)
    x2, t2 = _perturb_from(x, t, 3)
    assert (model(x, t, c)[:, :, :3] - model(x2, t2, c)[:, :, :3]).abs().max() > 1e-3


@torch.no_grad()
def test_local_window_hides_old_frames_but_not_sink():
    model = tiny(num_layers=1)  # one layer: the dependency set is exactly the mask (no multi-hop paths)
    x, t, c = inputs(frames=6)
    kw = dict(mode="block_causal", frames_per_block=2, local_window=4, sink_frames=1)
    out = model(x, t, c, **kw)
    # the last block (frames 4, 5) sees the sink (frame 0) and frames 2..5; frame 1 is outside
    x2 = x.clone()
    x2[:, :, 1] = torch.randn_like(x2[:, :, 1])
    assert torch.equal(model(x2, t, c, **kw)[:, :, 4:], out[:, :, 4:])
    x3 = x.clone()
    x3[:, :, 0] = torch.randn_like(x3[:, :, 0])
    assert (model(x3, t, c, **kw)[:, :, 4:] - out[:, :, 4:]).abs().max() > 1e-3


@pytest.mark.parametrize("fpb", [1, 2])
@torch.no_grad()
def test_teacher_forcing_noisy_block_sees_only_earlier_clean_blocks(model, fpb):
    x, t, c = inputs(frames=6)
    clean = torch.randn_like(x)
    kw = dict(mode="teacher_forcing", frames_per_block=fpb, clean_x=clean)
    out = model(x, t, c, **kw)
    assert out.shape == x.shape  # only the noisy half is returned
    nblocks = 6 // fpb
    for i in range(1, nblocks):
        lo, hi = i * fpb, (i + 1) * fpb
        # clean blocks i and later: no effect on noisy block i
        clean2 = clean.clone()
        clean2[:, :, lo:] = torch.randn_like(clean2[:, :, lo:])
        assert torch.equal(model(x, t, c, **{**kw, "clean_x": clean2})[:, :, lo:hi], out[:, :, lo:hi])
        # clean block i - 1: changes noisy block i
        clean3 = clean.clone()
        clean3[:, :, lo - fpb : lo] = torch.randn_like(clean3[:, :, lo - fpb : lo])
        assert (
            model(x, t, c, **{**kw, "clean_x": clean3})[:, :, lo:hi] - out[:, :, lo:hi]
        ).abs().max() > 1e-3
        # other noisy blocks (earlier or later): no effect on noisy block i
        x2 = x.clone()
        x2[:, :, :lo] = torch.randn_like(x2[:, :, :lo])
        x2[:, :, hi:] = torch.randn_like(x2[:, :, hi:])
        assert torch.equal(model(x2, t, c, **kw)[:, :, lo:hi], out[:, :, lo:hi])


@torch.no_grad()
def test_teacher_forcing_respects_local_window():
    model = tiny(num_layers=1)  # one layer: the dependency set is exactly the mask (no multi-hop paths)
    x, t, c = inputs(frames=6)
    clean = torch.randn_like(x)
    kw = dict(mode="teacher_forcing", frames_per_block=2, clean_x=clean, local_window=4)
    out = model(x, t, c, **kw)
    # noisy block 2 (frames 4, 5) with window 4 sees clean frames 2, 3 only: clean frames 0, 1 are out
    clean2 = clean.clone()
    clean2[:, :, :2] = torch.randn_like(clean2[:, :, :2])
    assert torch.equal(model(x, t, c, **{**kw, "clean_x": clean2})[:, :, 4:], out[:, :, 4:])
    full = model(x, t, c, **{**kw, "local_window": None})
    full2 = model(x, t, c, **{**kw, "local_window": None, "clean_x": clean2})
    assert (full[:, :, 4:] - full2[:, :, 4:]).abs().max() > 1e-3  # without the window it would see them


@torch.no_grad()
def test_teacher_forcing_clean_timestep_is_used(model):
    x, t, c = inputs(frames=4)
    clean = torch.randn_like(x)
    a = model(x, t, c, mode="teacher_forcing", frames_per_block=2, clean_x=clean)
    b = model(x, t, c, mode="teacher_forcing", frames_per_block=2, clean_x=clean, clean_t=torch.zeros(2, 4))
    d = model(
        x, t, c, mode="teacher_forcing", frames_per_block=2, clean_x=clean, clean_t=torch.full((2,), 500.0)
    )
    assert torch.equal(a, b)
    assert (a[:, :, 2:] - d[:, :, 2:]).abs().max() > 1e-3


@torch.no_grad()
def test_cached_stream_future_does_not_leak(model):
    x, t, c = inputs(frames=6)
    x2, t2 = _perturb_from(x, t, 4)
    outs = []
    for xs, ts in ((x, t), (x2, t2)):
        cache = KVCache.for_model(model, 2, 6, model.tokens_per_frame(4, 4))
        outs.append(
            torch.cat(
                [
                    model(xs[:, :, s : s + 2], ts[:, s : s + 2], c, cache=cache, start_frame=s)
                    for s in (0, 2, 4)
                ],
                dim=2,
            )
        )
    assert torch.equal(outs[0][:, :, :4], outs[1][:, :, :4])
    assert (outs[0][:, :, 4:] - outs[1][:, :, 4:]).abs().max() > 1e-3
