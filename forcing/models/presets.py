"""Named sizes of the Wan2.1 backbone and its configuration dataclass.

`WanConfig` holds only architecture facts and a few run-time switches (activation checkpointing,
attention backend); it is stored on the model as ``model.config`` and never depends on a paradigm.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["PRESETS", "WanConfig", "get_preset"]


@dataclass(frozen=True)
class WanConfig:
    """Architecture of a Wan2.1 text-to-video DiT (original Wan parameter names).

    Attributes:
        dim: model width (`num_heads * head_dim`).
        ffn_dim: hidden width of the GELU-tanh feed-forward network.
        freq_dim: width of the sinusoidal timestep embedding.
        text_dim: width of the text-encoder features (UMT5-XXL: 4096).
        num_heads: attention heads (self- and cross-attention).
        num_layers: transformer blocks.
        in_dim / out_dim: latent channels in and out.
        patch_size: (t, h, w) patch of the 3D patch embedding.
        eps: epsilon of every LayerNorm and RMSNorm.
        rope_theta: base of the rotary embedding frequencies.
        cross_attn_norm: affine LayerNorm (`norm3`) before cross-attention (True for every Wan2.1 T2V).
        gradient_checkpointing: recompute each block in backward (`torch.utils.checkpoint`, non-reentrant).
        attention_backend: "auto" (flash-attn / FlexAttention on CUDA, SDPA elsewhere), "sdpa",
            "flex" or "flash"; see `forcing.models.attention`.
    """

    dim: int
    ffn_dim: int
    freq_dim: int
    text_dim: int
    num_heads: int
    num_layers: int
    in_dim: int = 16
    out_dim: int = 16
    patch_size: tuple[int, int, int] = (1, 2, 2)
    eps: float = 1e-6
    rope_theta: float = 10000.0
    cross_attn_norm: bool = True
    gradient_checkpointing: bool = False
    attention_backend: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))
        if len(self.patch_size) != 3:
            raise ValueError(f"patch_size must have 3 entries (t, h, w), got {self.patch_size}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if self.head_dim % 2 or self.head_dim < 6:
            raise ValueError(f"head_dim {self.head_dim} must be even and >= 6 for the 3-axis RoPE")
        if self.freq_dim % 2:
            raise ValueError(f"freq_dim {self.freq_dim} must be even")
        if self.attention_backend not in ("auto", "sdpa", "flex", "flash"):
            raise ValueError(f"unknown attention_backend {self.attention_backend!r}")

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.dim // self.num_heads

    def replace(self, **overrides: Any) -> WanConfig:
        """A copy with some fields changed; unknown names raise TypeError."""
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for logging and checkpoints)."""
        return dataclasses.asdict(self)


PRESETS: dict[str, WanConfig] = {
    # Unit tests: a few thousand parameters, head_dim 16 (RoPE axes 8/4/4).
    "tiny": WanConfig(
        dim=32, ffn_dim=64, freq_dim=16, text_dim=16, num_heads=2, num_layers=2, in_dim=4, out_dim=4,
        patch_size=(1, 2, 2),
    ),
    # Shapes world: RGB 32x32 frames, identity codec, 8x8 = 64 tokens per frame, head_dim 32 (12/10/10).
    "shapes": WanConfig(
        dim=128, ffn_dim=512, freq_dim=64, text_dim=64, num_heads=4, num_layers=4, in_dim=3, out_dim=3,
        patch_size=(1, 4, 4),
    ),
    # Wan2.1-T2V-1.3B: 12 heads x 128, 30 blocks, UMT5-XXL text features.
    "wan2.1-t2v-1.3b": WanConfig(
        dim=1536, ffn_dim=8960, freq_dim=256, text_dim=4096, num_heads=12, num_layers=30
    ),
    # Wan2.1-T2V-14B: 40 heads x 128, 40 blocks.
    "wan2.1-t2v-14b": WanConfig(
        dim=5120, ffn_dim=13824, freq_dim=256, text_dim=4096, num_heads=40, num_layers=40
    ),
}
# Shapes world in the latent space of its learned codec (forcing/encoders/shapes_codec.py):
# 8x8x8 latents per 32x32 frame, patch (1, 2, 2) -> 4x4 = 16 tokens per frame, 32 values a token.
PRESETS["shapes_latent"] = PRESETS["shapes"].replace(in_dim=8, out_dim=8, patch_size=(1, 2, 2))
# The shapes world's shipped pretrained base (forcing/assets/shapes_base): the latent backbone, wider
# and deeper (3.9 M parameters), head_dim 32.
PRESETS["shapes_base"] = PRESETS["shapes_latent"].replace(dim=192, ffn_dim=768, num_heads=6, num_layers=6)


def get_preset(name: str, **overrides: Any) -> WanConfig:
    """The `WanConfig` of a named preset with `overrides` applied (unknown preset or field: error)."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; available: {sorted(PRESETS)}")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]
