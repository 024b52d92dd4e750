"""One attention function with three backends, and the attention masks of the training modes.

Backends (chosen per call from the device, the mask and `backend`):
- flash-attn (`flash_attn_func`), when importable, for unmasked attention (bidirectional, cached
  chunks) of fp16/bf16 CUDA tensors;
- FlexAttention block masks for the masked training modes on CUDA, compiled lazily on first use
  (never at import);
- `scaled_dot_product_attention` with a boolean mask everywhere else (CPU: FlexAttention has no
  CPU backward).

Masks are pure functions of (mode, frames, tokens_per_frame, frames_per_block, local_window,
sink_frames, device) cached by exactly those arguments, so a new frame count gives a new mask.
Visibility rule (frame level): key frame j is visible to a query of block b iff
block(j) <= b and (j < sink_frames or j >= end(b) - local_window), end(b) = exclusive end of b.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "MASK_MODES",
    "attention",
    "build_mask",
    "flash_available",
    "flex_available",
    "frame_mask",
    "mask_kind",
]

MASK_MODES = ("bidirectional", "block_causal", "teacher_forcing")

try:  # optional dependency
    from flash_attn import flash_attn_func as _flash_attn_func  # type: ignore[import-not-found]
except Exception:  # noqa: BLE001 - any import failure means "not available"
    _flash_attn_func = None

try:
    from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention
except Exception:  # noqa: BLE001
    BlockMask = None  # type: ignore[assignment,misc]
    create_block_mask = flex_attention = None  # type: ignore[assignment]

_compiled_flex: Any = None


def flash_available() -> bool:
    """True when flash-attn is importable."""
    return _flash_attn_func is not None


def flex_available() -> bool:
    """True when this torch has FlexAttention."""
    return flex_attention is not None


def _flex() -> Any:
    """FlexAttention compiled on first use (a compile at import would slow every import and pick a device)."""
    global _compiled_flex
    if _compiled_flex is None:
        _compiled_flex = torch.compile(flex_attention, dynamic=False)
    return _compiled_flex


def _check_window(frames_per_block: int, local_window: int | None, sink_frames: int) -> None:
    if frames_per_block < 1:
        raise ValueError(f"frames_per_block must be >= 1, got {frames_per_block}")
    if sink_frames < 0:
        raise ValueError(f"sink_frames must be >= 0, got {sink_frames}")
    if local_window is not None and local_window < frames_per_block:
        raise ValueError(
            f"local_window ({local_window} frames) must cover at least one block ({frames_per_block} frames)"
        )


def _causal_frame_mask(
    q_frames: torch.Tensor,
    k_frames: torch.Tensor,
    frames: int,
    frames_per_block: int,
    local_window: int | None,
    sink_frames: int,
    strict: bool,
) -> torch.Tensor:
    """[Fq, Fk] visibility of key frames `k_frames` for query frames `q_frames` (block-causal rule).

    `strict`: only blocks strictly before the query's block (teacher forcing's clean context).
    """
    q_block = q_frames // frames_per_block  # [Fq]
    k_block = k_frames // frames_per_block  # [Fk]
    q_end = torch.clamp((q_block + 1) * frames_per_block, max=frames)  # [Fq] exclusive end of the query block
    before = k_block[None, :] < q_block[:, None] if strict else k_block[None, :] <= q_block[:, None]
    if local_window is None:
        return before
    in_window = k_frames[None, :] >= (q_end[:, None] - local_window)
    is_sink = (k_frames < sink_frames)[None, :]
    return before & (in_window | is_sink)


@functools.lru_cache(maxsize=64)
def frame_mask(
    mode: str,
    frames: int,
    frames_per_block: int = 1,
    local_window: int | None = None,
    sink_frames: int = 0,
    device: torch.device | None = None,
) -> torch.Tensor | None:
    """Frame-level boolean visibility [Fq, Fk] (True = attend) of a masked mode; None for bidirectional.

    block_causal: F frames. teacher_forcing: 2F frames [clean | noisy]; clean frames are
    block-causal among themselves and never see noisy ones; noisy block i sees its own noisy block
    and the clean blocks < i (with the same window / sink rule).
    """
    if mode not in MASK_MODES:
        raise ValueError(f"unknown attention mode {mode!r}; expected one of {MASK_MODES}")
    if mode == "bidirectional":
        return None
    _check_window(frames_per_block, local_window, sink_frames)
    idx = torch.arange(frames, device=device)
    causal = _causal_frame_mask(idx, idx, frames, frames_per_block, local_window, sink_frames, strict=False)
    if mode == "block_causal":
        return causal  # [F, F]
    block = idx // frames_per_block
    clean_ctx = _causal_frame_mask(idx, idx, frames, frames_per_block, local_window, sink_frames, strict=True)
    own_block = block[:, None] == block[None, :]  # [F, F]
    top = torch.cat([causal, torch.zeros_like(causal)], dim=1)  # clean queries: [F, 2F]
    bottom = torch.cat([clean_ctx, own_block], dim=1)  # noisy queries: [F, 2F]
    return torch.cat([top, bottom], dim=0)  # [2F, 2F]


def mask_kind(device: torch.device, backend: str = "auto") -> str:
    """Mask representation for `device`: "flex" (BlockMask) on CUDA when allowed, else "dense" (bool)."""
    if backend == "flex" and not (flex_available() and device.type == "cuda"):
        raise RuntimeError("attention_backend='flex' needs FlexAttention and a CUDA device")
    if device.type == "cuda" and backend in ("auto", "flex") and flex_available():
        return "flex"
    return "dense"


@functools.lru_cache(maxsize=8)  # dense token masks can be large (N^2 bools): keep few
def build_mask(
    mode: str,
    frames: int,
    tokens_per_frame: int,
    frames_per_block: int = 1,
    local_window: int | None = None,
    sink_frames: int = 0,
    device: torch.device | None = None,
    kind: str = "dense",
) -> Any:
    """Token-level attention mask of a masked mode (None for bidirectional), cached by its arguments.

    kind "dense": bool tensor [N, N] for SDPA (True = attend); kind "flex": a FlexAttention
    BlockMask. N = frames * tokens_per_frame (2x for teacher_forcing); tokens are frame-major.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    fmask = frame_mask(mode, frames, frames_per_block, local_window, sink_frames, device)
    if fmask is None:
        return None
    n = fmask.shape[0] * tokens_per_frame
    if kind == "dense":
        return fmask.repeat_interleave(tokens_per_frame, 0).repeat_interleave(tokens_per_frame, 1)  # [N, N]
    if kind != "flex":
        raise ValueError(f"unknown mask kind {kind!r}")

    def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        return fmask[q_idx // tokens_per_frame, kv_idx // tokens_per_frame]

    return create_block_mask(mask_mod, B=None, H=None, Q_LEN=n, KV_LEN=n, device=device)


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Any = None, backend: str = "auto"
) -> torch.Tensor:
    """Scaled dot-product attention (softmax(q k^T / sqrt(d)) v) of q [B, Nq, H, d], k, v [B, Nk, H, d].

    `mask`: None, a bool tensor broadcastable to [B, H, Nq, Nk] (True = attend), or a BlockMask.
    Returns [B, Nq, H, d] in q's dtype.
    """
    if BlockMask is not None and isinstance(mask, BlockMask):
        out = _flex()(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), block_mask=mask)
        return out.transpose(1, 2)
    use_flash = (
        mask is None
        and backend in ("auto", "flash")
        and _flash_attn_func is not None
        and q.is_cuda
        and q.dtype in (torch.float16, torch.bfloat16)
    )
    if backend == "flash" and not use_flash and mask is None:
        raise RuntimeError("attention_backend='flash' needs flash-attn and fp16/bf16 CUDA tensors")
    if use_flash:
        return _flash_attn_func(q, k, v)
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask
    )
    return out.transpose(1, 2)  # [B, Nq, H, d]
