"""Block-by-block decoding with the Wan VAE that carries its causal convolution cache across blocks.

diffusers' `AutoencoderKLWan.decode` clears the decoder's causal cache on every call, so decoding a
stream block by block would restart the video at each block (a block's first latent frame decodes
to 1 pixel frame instead of 4). :class:`WanStreamDecoder` runs the same per-latent-frame loop as
diffusers' `_decode` but keeps the cache between calls: the blocks' outputs, concatenated, are the
decode of the whole latent video. It reads the VAE's cache fields (`_feat_map`, `_conv_idx`), as
diffusers' own `_decode` does.
"""

from __future__ import annotations

import torch
from torch import Tensor

from forcing.encoders.wan_vae import WanVAECodec

__all__ = ["WanStreamDecoder"]


class WanStreamDecoder:
    """Decode normalised latent blocks [B, z_dim, f, H', W'] of one video in order; `reset` for the next."""

    def __init__(self, codec: WanVAECodec) -> None:
        self.codec = codec
        self.reset()

    def reset(self) -> None:
        """Start a new video: clear the VAE's causal cache."""
        self.codec.vae.clear_cache()
        self._started = False

    @torch.no_grad()
    def __call__(self, latents: Tensor) -> Tensor:
        """Video frames [B, 3, f', H, W] in [-1, 1] of the next block (f' = 1 + 4 (f - 1) for the
        video's first block, 4 f after)."""
        codec, vae = self.codec, self.codec.vae
        z = latents.float() * codec.latents_std.to(latents.device) + codec.latents_mean.to(latents.device)
        x = vae.post_quant_conv(z.to(codec._dtype()))
        frames = []
        for i in range(x.shape[2]):
            vae._conv_idx = [0]
            frames.append(
                vae.decoder(
                    x[:, :, i : i + 1], feat_cache=vae._feat_map, feat_idx=vae._conv_idx, first_chunk=not self._started
                )
            )
            self._started = True
        return torch.cat(frames, dim=2).clamp(-1.0, 1.0)
