"""The rollouts' KV cache: one factory over `KVCache.for_model` (which holds the one dtype rule)."""

from __future__ import annotations

import dataclasses

from torch import Tensor

from forcing.models import CausalWanModel, KVCache


def new_cache(
    model: CausalWanModel, like: Tensor, capacity_frames: int, *, rows: int | None = None, sink_frames: int = 0,
) -> KVCache:
    """An empty cache for blocks shaped like `like` [B, C, f, H, W]: `capacity_frames` frames per layer
    (sink + window), `rows` batch rows (default B; 2B for a batched-CFG denoiser), absolute positions,
    K/V in `forcing.models.kv_cache.cache_dtype`."""
    return KVCache.for_model(
        model,
        batch_size=like.shape[0] if rows is None else rows,
        capacity_frames=capacity_frames,
        tokens_per_frame=model.tokens_per_frame(like.shape[-2], like.shape[-1]),
        sink_frames=sink_frames,
        device=like.device,
    )


def copy_cache(cache: KVCache) -> KVCache:
    """An independent copy of a cache (buffers cloned, bookkeeping copied)."""
    return dataclasses.replace(
        cache, keys=[k.clone() for k in cache.keys], values=[v.clone() for v in cache.values],
        slot_frames=list(cache.slot_frames), cross_keys=list(cache.cross_keys),
        cross_values=list(cache.cross_values),
    )
