"""Helpers of the backbone tests (imported as `wan_testing`): a tiny CausalWanModel with random weights."""

import torch

from forcing.models import CausalWanModel


def randomize_(model: torch.nn.Module, std: float = 0.2) -> torch.nn.Module:
    """Fill every parameter with noise (norm weights around 1) so that no output is trivially zero.

    Wan's own initialisation zeroes the output head, which would make every output test vacuous.
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            p.copy_(base + std * torch.randn_like(p))
    return model


def tiny(**overrides) -> CausalWanModel:
    """The `tiny` preset with random weights, in eval mode."""
    return randomize_(CausalWanModel.from_preset("tiny", **overrides)).eval()


def inputs(batch: int = 2, frames: int = 6, height: int = 4, width: int = 4, text_len: int = 5):
    """Random (x [B, 4, F, H, W], per-frame t [B, F], context [B, L, 16]) for the tiny preset."""
    x = torch.randn(batch, 4, frames, height, width)
    t = torch.rand(batch, frames) * 1000
    context = torch.randn(batch, text_len, 16)
    return x, t, context


def diffusers_kwargs(cfg, **extra) -> dict:
    """Constructor keywords of diffusers' Wan transformers (WanTransformer3DModel, SkyReels-V2) for
    the architecture of a `WanConfig`, written out independently of the library's config export."""
    return dict(
        patch_size=cfg.patch_size,
        num_attention_heads=cfg.num_heads,
        attention_head_dim=cfg.head_dim,
        in_channels=cfg.in_dim,
        out_channels=cfg.out_dim,
        text_dim=cfg.text_dim,
        freq_dim=cfg.freq_dim,
        ffn_dim=cfg.ffn_dim,
        num_layers=cfg.num_layers,
        eps=cfg.eps,
        **extra,
    )
