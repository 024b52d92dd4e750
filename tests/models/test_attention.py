"""Mask builders (pure, cached by their arguments) and attention backends."""

import pytest
import torch
from wan_testing import inputs, tiny

from forcing.models.attention import attention, build_mask, flash_available, flex_available, frame_mask


def _visible(j, b, fpb, frames, window, sink):
    end = min((b + 1) * fpb, frames)
    return j // fpb <= b and (window is None or j < sink or j >= end - window)


@pytest.mark.parametrize(
    "frames,fpb,window,sink",
    [(6, 1, None, 0), (6, 2, None, 0), (7, 3, None, 0), (8, 2, 4, 0), (8, 1, 3, 2), (9, 3, 3, 1)],
)
def test_block_causal_mask_follows_the_rule(frames, fpb, window, sink):
    m = frame_mask("block_causal", frames, fpb, window, sink)
    expected = torch.tensor(
        [[_visible(j, i // fpb, fpb, frames, window, sink) for j in range(frames)] for i in range(frames)]
    )
    assert torch.equal(m, expected)


@pytest.mark.parametrize("frames,fpb,window,sink", [(6, 2, None, 0), (6, 1, 2, 1), (6, 3, 3, 0)])
def test_teacher_forcing_mask_follows_the_rule(frames, fpb, window, sink):
    m = frame_mask("teacher_forcing", frames, fpb, window, sink)
    assert m.shape == (2 * frames, 2 * frames)
    for i in range(frames):
        b = i // fpb
        for j in range(frames):
            assert m[i, j] == _visible(j, b, fpb, frames, window, sink)  # clean -> clean: block-causal
            assert not m[i, frames + j]  # clean never sees noisy
            # noisy -> clean: strictly earlier blocks (same window / sink rule)
            assert m[frames + i, j] == (j // fpb < b and _visible(j, b, fpb, frames, window, sink))
            assert m[frames + i, frames + j] == (j // fpb == b)  # noisy -> own noisy block


def test_masks_are_cached_by_their_arguments_and_never_stale():
    a = build_mask("block_causal", 4, 3, 2, None, 0, torch.device("cpu"))
    assert build_mask("block_causal", 4, 3, 2, None, 0, torch.device("cpu")) is a
    b = build_mask("block_causal", 6, 3, 2, None, 0, torch.device("cpu"))
    assert a.shape == (12, 12) and b.shape == (18, 18)
    assert build_mask("bidirectional", 4, 3) is None
    assert torch.equal(a, frame_mask("block_causal", 4, 2).repeat_interleave(3, 0).repeat_interleave(3, 1))


def test_model_follows_frame_count_changes():
    model = tiny()
    with torch.no_grad():
        for frames in (4, 6, 2):
            x, t, c = inputs(frames=frames)
            assert model(x, t, c, mode="block_causal", frames_per_block=2).shape == x.shape


def test_invalid_arguments():
    with pytest.raises(ValueError, match="local_window"):
        frame_mask("block_causal", 6, 3, 2)
    with pytest.raises(ValueError, match="unknown attention mode"):
        frame_mask("causal", 6)


def test_sdpa_with_bool_mask_matches_the_formula():
    q, k, v = torch.randn(2, 5, 3, 8), torch.randn(2, 7, 3, 8), torch.randn(2, 7, 3, 8)
    mask = torch.rand(5, 7) > 0.3
    mask[:, 0] = True
    logits = torch.einsum("bqhd,bkhd->bhqk", q, k) / 8**0.5
    ref = torch.einsum("bhqk,bkhd->bqhd", logits.masked_fill(~mask, float("-inf")).softmax(-1), v)
    assert (attention(q, k, v, mask) - ref).abs().max() < 1e-5


@pytest.mark.skipif(not flex_available(), reason="no FlexAttention in this torch")
@pytest.mark.parametrize("mode", ["block_causal", "teacher_forcing"])
def test_flex_block_mask_equals_dense_mask(mode):
    # eager (unfused) FlexAttention runs on CPU: checks the BlockMask's mask_mod against the dense mask
    from torch.nn.attention.flex_attention import flex_attention

    args = (mode, 6, 4, 2, 4, 1, torch.device("cpu"))
    block_mask, dense = build_mask(*args, kind="flex"), build_mask(*args, kind="dense")
    n = dense.shape[0]  # 24 tokens, 48 for teacher forcing
    q, k, v = (torch.randn(1, n, 2, 16) for _ in range(3))
    out = flex_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), block_mask=block_mask)
    assert (out.transpose(1, 2) - attention(q, k, v, dense)).abs().max() < 1e-5
    assert (attention(q, k, v, dense) - attention(q, k, v, None)).abs().max() > 1e-3


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["block_causal", "teacher_forcing"])
def test_flex_attention_matches_sdpa_forward_and_backward(mode):
    model = tiny().cuda()
    sdpa = tiny().cuda()
    sdpa.load_state_dict(model.state_dict())
    for blk in sdpa.blocks:
        blk.self_attn.backend = blk.cross_attn.backend = "sdpa"
    sdpa.config = sdpa.config.replace(attention_backend="sdpa")
    x, t, c = (a.cuda() for a in inputs(frames=6, height=16, width=16))
    kw = dict(mode=mode, frames_per_block=2, local_window=4, sink_frames=1)
    if mode == "teacher_forcing":
        kw["clean_x"] = torch.randn_like(x)
    outs, grads = [], []
    for m in (model, sdpa):
        out = m(x, t, c, **kw)
        out.square().mean().backward()
        outs.append(out)
        grads.append(m.blocks[0].self_attn.q.weight.grad)
    assert (outs[0] - outs[1]).abs().max() < 1e-3
    assert (grads[0] - grads[1]).abs().max() < 1e-3 * (1 + grads[1].abs().max())


@pytest.mark.gpu
@pytest.mark.skipif(not flash_available(), reason="flash-attn not installed")
def test_flash_attention_matches_sdpa():
    q, k, v = (torch.randn(2, 64, 4, 64, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    ref = attention(q, k, v, backend="sdpa")
    assert (attention(q, k, v, backend="flash") - ref).abs().max() < 2e-2
