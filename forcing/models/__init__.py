"""The shared causal video backbone: Wan2.1 DiT with bidirectional / block-causal / teacher-forcing /
cached attention, its KV cache, RoPE, attention backends and named presets."""

from forcing.models.kv_cache import CachePlan, KVCache
from forcing.models.presets import PRESETS, WanConfig, get_preset
from forcing.models.wan import CausalWanModel

__all__ = ["PRESETS", "CachePlan", "CausalWanModel", "KVCache", "WanConfig", "get_preset"]
