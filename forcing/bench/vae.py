"""A Wan VAE codec with random weights for decode timings: diffusers' default `AutoencoderKLWan`
config (the Wan2.1 VAE's architecture) or a tiny one; nothing is downloaded."""

from __future__ import annotations

import torch

__all__ = ["TINY_VAE", "random_wan_vae"]

#: a small AutoencoderKLWan (same strides 4x8x8 as Wan2.1's) for CPU runs of the benchmarks
TINY_VAE: dict[str, object] = {"base_dim": 8, "dim_mult": [1, 2, 2, 2], "num_res_blocks": 1}


def random_wan_vae(
    device: torch.device, dtype: torch.dtype, z_dim: int = 16, tiny: bool = False
) -> torch.nn.Module:
    """A frozen :class:`~forcing.encoders.WanVAECodec` around a randomly initialised AutoencoderKLWan.

    `tiny=False`: diffusers' default config, which is the Wan2.1 VAE (z_dim 16, base_dim 96, its
    latents_mean / latents_std); `z_dim` must then be 16. `tiny=True`: :data:`TINY_VAE` with `z_dim`
    channels (mean 0, std 1), to match a small backbone.
    """
    from diffusers import AutoencoderKLWan

    from forcing.encoders.wan_vae import WanVAECodec

    if tiny:
        kwargs = {**TINY_VAE, "z_dim": z_dim, "latents_mean": [0.0] * z_dim, "latents_std": [1.0] * z_dim}
    elif z_dim != 16:
        raise ValueError(f"the Wan2.1 VAE has z_dim 16, not {z_dim}")
    else:
        kwargs = {}
    torch.manual_seed(0)
    with torch.device(device):
        vae = AutoencoderKLWan(**kwargs)
    return WanVAECodec(vae.to(dtype=dtype).eval()).to(device)
