"""3-axis rotary position embedding (Wan2.1) computed on the fly for arbitrary frame positions.

A head of width d is split into a time axis of d - 4 (d // 6) channels and height / width axes of
2 (d // 6) channels each (d = 128: 44 / 42 / 42). Channels are rotated in interleaved pairs
(x[2i], x[2i + 1]), as Wan's complex-number view and diffusers' real implementation do.
Angles are computed in float64 from integer positions (no fixed-size table), so any frame index
works, and the rotation itself runs in float32 (a mixed-precision island). The height / width
part of the tables depends only on the grid: it is memoised per (grid, head_dim, theta, device), so
a call computes float64 angles only for its F frame positions ([F, d_t / 2]) and assembles the
per-token tables from the two parts (cos / sin are elementwise: the same values as computing them
for every token).
"""

from __future__ import annotations

import functools

import torch

__all__ = ["apply_rope", "rope_axis_dims", "rope_cos_sin"]


def rope_axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Channels of (time, height, width) in one head: (d - 4 (d // 6), 2 (d // 6), 2 (d // 6))."""
    hw = 2 * (head_dim // 6)
    return head_dim - 2 * hw, hw, hw


def _inverse_frequencies(axis_dim: int, theta: float, device: torch.device) -> torch.Tensor:
    # RoPE (Su et al. 2021): omega_i = theta^(-2i / d_axis), i = 0 .. d_axis/2 - 1.  -> [d_axis/2] float64
    exponents = torch.arange(0, axis_dim, 2, dtype=torch.float64, device=device) / axis_dim
    return 1.0 / (theta**exponents)


def rope_cos_sin(
    frame_positions: torch.Tensor, height: int, width: int, head_dim: int, theta: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angles of every token of a (frames, height, width) grid.

    Args:
        frame_positions: [F] integer (or float) temporal position of each frame; may be any value
            (absolute frame index, repeated positions for teacher forcing, compacted cache positions).
        height, width: token grid of one frame (after patching); tokens are ordered (f, h, w).
        head_dim: width of one attention head.
    Returns:
        (cos, sin), each [F * height * width, head_dim // 2] float32.
    """
    device = frame_positions.device
    d_t = rope_axis_dims(head_dim)[0]
    # angle = position * omega, in float64 so that large positions keep full precision.
    ang_t = torch.outer(
        frame_positions.to(torch.float64), _inverse_frequencies(d_t, theta, device)
    )  # [F, d_t/2]
    cos_hw, sin_hw = _grid_tables(height, width, head_dim, theta, device)  # [H*W, (d_h + d_w)/2] each
    return _per_token(ang_t.cos(), cos_hw), _per_token(ang_t.sin(), sin_hw)


def _per_token(time: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Per-token table [F * H*W, d/2] float32 from a time part [F, d_t/2] and a grid part [H*W, (d_h + d_w)/2]."""
    num_frames, tokens = time.shape[0], grid.shape[0]
    table = torch.cat(
        [time.float()[:, None, :].expand(-1, tokens, -1), grid[None].expand(num_frames, -1, -1)], dim=-1
    )  # [F, H*W, d/2]
    return table.reshape(num_frames * tokens, -1)


@functools.lru_cache(maxsize=16)
def _grid_tables(
    height: int, width: int, head_dim: int, theta: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) [height * width, (d_h + d_w) / 2] float32 of the height / width angles, memoised.

    Keyed by ints (no tensor in the key). Built outside inference mode (an inference tensor could
    not be saved for a later backward); never modified in place.
    """
    _, d_h, d_w = rope_axis_dims(head_dim)
    with torch.inference_mode(False), torch.no_grad():
        ang_h = torch.outer(
            torch.arange(height, dtype=torch.float64, device=device), _inverse_frequencies(d_h, theta, device)
        )  # [H, d_h/2]
        ang_w = torch.outer(
            torch.arange(width, dtype=torch.float64, device=device), _inverse_frequencies(d_w, theta, device)
        )  # [W, d_w/2]
        angles = torch.cat(
            [
                ang_h[:, None, :].expand(height, width, -1),
                ang_w[None, :, :].expand(height, width, -1),
            ],
            dim=-1,
        ).reshape(height * width, -1)  # [H*W, (d_h + d_w)/2]
        return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved channel pairs of `x` [B, N, heads, d] by angles (cos, sin) [N, d/2].

    Runs in float32 and returns `x`'s dtype.
    """
    pairs = x.float().unflatten(-1, (-1, 2))  # [B, N, heads, d/2, 2]
    x1, x2 = pairs[..., 0], pairs[..., 1]
    c = cos[None, :, None, :]  # [1, N, 1, d/2]
    s = sin[None, :, None, :]
    # 2D rotation of each pair: (x1, x2) -> (x1 cos - x2 sin, x1 sin + x2 cos).
    out = torch.stack((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1)  # [B, N, heads, d/2, 2]
    return out.flatten(-2).to(x.dtype)
