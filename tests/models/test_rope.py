"""3-axis RoPE: Wan's channel split and pair layout, arbitrary positions, relative property."""

import torch

from forcing.models.rope import apply_rope, rope_axis_dims, rope_cos_sin


def test_axis_split():
    assert rope_axis_dims(128) == (44, 42, 42)  # Wan2.1 1.3B / 14B
    assert rope_axis_dims(16) == (8, 4, 4)  # tiny
    assert rope_axis_dims(32) == (12, 10, 10)  # shapes


def _wan_reference(x, frame_pos, h, w, theta=10000.0):
    """Wan's complex-number RoPE (float64): channels (2i, 2i+1) form one complex number."""
    d = x.shape[-1]
    dims = rope_axis_dims(d)

    def freqs(pos, dim):
        return torch.outer(pos.double(), 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))

    f = len(frame_pos)
    ang = torch.cat(
        [
            freqs(frame_pos, dims[0])[:, None, None].expand(f, h, w, -1),
            freqs(torch.arange(h), dims[1])[None, :, None].expand(f, h, w, -1),
            freqs(torch.arange(w), dims[2])[None, None].expand(f, h, w, -1),
        ],
        -1,
    ).reshape(f * h * w, -1)
    xc = torch.view_as_complex(x.double().unflatten(-1, (-1, 2)).contiguous())
    return torch.view_as_real(xc * torch.polar(torch.ones_like(ang), ang)[None, :, None]).flatten(-2)


def test_matches_wan_complex_formulation_at_large_positions():
    pos = torch.tensor([0, 3, 1023, 1024, 5000, 123456])
    x = torch.randn(2, len(pos) * 3 * 2, 2, 16)
    ours = apply_rope(x, *rope_cos_sin(pos, 3, 2, 16))
    assert (ours.double() - _wan_reference(x, pos, 3, 2)).abs().max() < 1e-5


def test_scores_depend_only_on_position_differences():
    q, k = torch.randn(1, 4, 1, 32), torch.randn(1, 4, 1, 32)
    pos = torch.tensor([0, 1, 5, 9])

    def scores(offset):
        cs = rope_cos_sin(pos + offset, 1, 1, 32)
        return apply_rope(q, *cs)[0, :, 0] @ apply_rope(k, *cs)[0, :, 0].T

    assert (scores(0) - scores(100_000)).abs().max() < 1e-4
    cs2 = rope_cos_sin(pos * 2, 1, 1, 32)  # different distances: different scores
    assert (scores(0) - apply_rope(q, *cs2)[0, :, 0] @ apply_rope(k, *cs2)[0, :, 0].T).abs().max() > 1e-2


def test_keeps_dtype_and_rotates_in_fp32():
    x = torch.randn(1, 4, 2, 16, dtype=torch.bfloat16)
    out = apply_rope(x, *rope_cos_sin(torch.arange(4), 1, 1, 16))
    assert out.dtype == torch.bfloat16
    assert (out.float().norm(dim=-1) - x.float().norm(dim=-1)).abs().max() < 0.05  # a rotation
