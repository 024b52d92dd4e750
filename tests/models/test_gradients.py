"""Activation checkpointing gives the same gradients; the cache carries no autograd graph."""

import pytest
import torch
from wan_testing import inputs, tiny

from forcing.models import KVCache


def _grads(model, loss_fn):
    model.zero_grad(set_to_none=True)
    loss_fn().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_same_grads(a, b, tol=1e-5):
    assert a.keys() == b.keys() and len(a) > 0
    for name in a:
        assert (a[name] - b[name]).abs().max() <= tol * (1 + a[name].abs().max()), name


@pytest.mark.parametrize("mode", ["bidirectional", "block_causal", "teacher_forcing"])
def test_checkpointing_same_gradients_masked(mode):
    model = tiny()
    x, t, c = inputs(frames=4)
    clean = torch.randn_like(x) if mode == "teacher_forcing" else None
    kw = dict(mode=mode, clean_x=clean) if mode != "bidirectional" else {}
    if mode != "bidirectional":
        kw["frames_per_block"] = 2

    def loss():
        return (model(x, t, c, **kw) ** 2).mean()

    plain = _grads(model, loss)
    model.enable_gradient_checkpointing()
    assert model.config.gradient_checkpointing
    ckpt = _grads(model, loss)
    _assert_same_grads(plain, ckpt)


def _cached_loss_after_later_writes(model, x, t, c):
    """Prefill blocks 0, 1; block 2 with grad; then blocks 3, 4 overwrite slots (ring of 4 frames);
    only then backward through block 2: recomputation must see block 2's original cache read."""
    cache = KVCache.for_model(model, 2, 4, 4)
    with torch.no_grad():
        for s in (0, 2):
            model(x[:, :, s : s + 2], t[:, s : s + 2], c, cache=cache, start_frame=s)
    out = model(x[:, :, 4:6], t[:, 4:6], c, cache=cache, start_frame=4)
    for s in (6, 8):
        model(
            x[:, :, s : s + 2], t[:, s : s + 2], c, cache=cache, start_frame=s
        )  # grad mode, writes detached
    return (out**2).mean()


def test_checkpointing_same_gradients_cached():
    model = tiny()
    x, t, c = inputs(frames=10)
    plain = _grads(model, lambda: _cached_loss_after_later_writes(model, x, t, c))
    model.enable_gradient_checkpointing()
    ckpt = _grads(model, lambda: _cached_loss_after_later_writes(model, x, t, c))
    _assert_same_grads(plain, ckpt)
    # reference: the same block as a masked forward (the cache read is exactly the visible context)
    model.enable_gradient_checkpointing(False)
    ref = _grads(
        model,
        lambda: (
            model(x[:, :, :6], t[:, :6], c, mode="block_causal", frames_per_block=2)[:, :, 4:] ** 2
        ).mean(),
    )
    assert any((ref[n] - plain[n]).abs().max() > 1e-6 for n in ref)  # masked also backprops into blocks 0, 1


def test_no_gradient_flows_into_earlier_blocks_through_the_cache():
    model = tiny()
    x, t, c = inputs(frames=4)
    x0 = x[:, :, :2].clone().requires_grad_(True)
    x1 = x[:, :, 2:].clone().requires_grad_(True)
    cache = KVCache.for_model(model, 2, 4, 4)
    out0 = model(x0, t[:, :2], c, cache=cache, start_frame=0)
    assert all(k.grad_fn is None and not k.requires_grad for k in cache.keys + cache.values)
    out1 = model(x1, t[:, 2:], c, cache=cache, start_frame=2)
    g0, g1 = torch.autograd.grad(out1.square().mean(), [x0, x1], allow_unused=True)
    assert g0 is None  # block 1's loss sees block 0 only through the (graph-free) cache
    assert g1 is not None and g1.abs().max() > 0
    # block 0's loss is still differentiable after block 1 was written
    (out0.square().mean()).backward()


def test_backward_after_its_slots_were_overwritten():
    model = tiny()
    x, t, c = inputs(frames=6)
    x0 = x[:, :, :2].clone().requires_grad_(True)
    cache = KVCache.for_model(model, 2, 2, 4)  # ring of one block: block 1 overwrites block 0's slots
    out0 = model(x0, t[:, :2], c, cache=cache, start_frame=0)
    (g_ref,) = torch.autograd.grad(out0.square().mean(), x0, retain_graph=True)
    with torch.no_grad():
        model(x[:, :, 2:4], t[:, 2:4], c, cache=cache, start_frame=2)
    model(x[:, :, 4:6], t[:, 4:6], c, cache=cache, start_frame=4)
    (g,) = torch.autograd.grad(out0.square().mean(), x0)
    assert torch.equal(g, g_ref)


def test_cross_attention_weights_get_gradients_in_cached_grad_mode():
    model = tiny()
    x, t, c = inputs(frames=4)
    cache = KVCache.for_model(model, 2, 4, 4)
    with torch.no_grad():
        model(x[:, :, :2], t[:, :2], c, cache=cache)  # caches the prompt's cross K/V
    model(x[:, :, 2:], t[:, 2:], c, cache=cache, start_frame=2).square().mean().backward()
    assert model.blocks[0].cross_attn.k.weight.grad.abs().max() > 0
    assert model.text_embedding[0].weight.grad.abs().max() > 0


def test_checkpoint_every_other_block(monkeypatch):
    """`every=2` recomputes blocks 0, 2, ... only, with the same gradients."""
    import forcing.models.wan as wan

    model = tiny()
    x, t, c = inputs(frames=4)

    def loss():
        return (model(x, t, c) ** 2).mean()

    plain = _grads(model, loss)
    calls = []
    real_checkpoint = wan.checkpoint
    monkeypatch.setattr(wan, "checkpoint", lambda block, *a, **k: calls.append(block) or real_checkpoint(block, *a, **k))
    model.enable_gradient_checkpointing(every=2)
    _assert_same_grads(plain, _grads(model, loss))
    blocks = list(model.blocks)
    assert [blocks.index(b) for b in calls] == list(range(0, len(blocks), 2))
    with pytest.raises(ValueError, match="every 0"):
        model.enable_gradient_checkpointing(every=0)
