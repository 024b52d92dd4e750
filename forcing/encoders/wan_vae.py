"""The Wan2.1 VAE (diffusers `AutoencoderKLWan`) as a frozen latent codec, from a local folder."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from forcing.encoders._folders import (
    from_pretrained_kwargs,
    pretrained_dir,
)
from forcing.encoders.frozen import FrozenModule

_EXPECTED = (
    "a diffusers AutoencoderKLWan (config.json + diffusion_pytorch_model.safetensors), or a "
    "diffusers Wan2.1 folder with a vae/ subfolder (e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers)"
)


class WanVAECodec(FrozenModule):
    """Frozen Wan VAE: video [B, 3, F, H, W] in [-1, 1] <-> normalised latents [B, z_dim, F', H', W'].

    `encode` takes the posterior mean and normalises it with the config's `latents_mean` /
    `latents_std` as Wan does, `z = (mu - mean) / std`; `decode` inverts it before decoding.
    F' = 1 + (F - 1) / temporal_stride, H' = H / spatial_stride, W' = W / spatial_stride.
    """

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae
        config = vae.config
        self.latent_channels = int(config.z_dim)
        self.temporal_stride = int(
            getattr(config, "scale_factor_temporal", None) or 2 ** sum(config.temperal_downsample)
        )
        self.spatial_stride = int(
            getattr(config, "scale_factor_spatial", None) or 2 ** (len(config.dim_mult) - 1)
        )
        for name in ("latents_mean", "latents_std"):
            values = getattr(config, name, None)
            if values is None or len(values) != self.latent_channels:
                raise ValueError(
                    f"the Wan VAE config needs {name} with z_dim={self.latent_channels} values, got {values}"
                )
            table = torch.tensor(values, dtype=torch.float32, device="cpu").view(1, -1, 1, 1, 1)
            self.register_buffer(name, table, persistent=False)
        self.freeze()

    @classmethod
    def from_pretrained(cls, folder: str | Path, dtype: torch.dtype | str | None = None) -> WanVAECodec:
        """Load `AutoencoderKLWan` from a local folder (or its vae/ subfolder); nothing is downloaded."""
        from diffusers import AutoencoderKLWan

        vae_dir = pretrained_dir(folder, "vae", "Wan VAE", _EXPECTED)
        return cls(AutoencoderKLWan.from_pretrained(vae_dir, **from_pretrained_kwargs(dtype, "torch_dtype")))

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, F, H, W) of the latents of a video of the given size (checked to be encodable)."""
        if (num_frames - 1) % self.temporal_stride or num_frames < 1:
            raise ValueError(f"the Wan VAE needs 1 + {self.temporal_stride} k frames, got {num_frames}")
        if height % self.spatial_stride or width % self.spatial_stride:
            raise ValueError(
                f"the Wan VAE needs height and width divisible by {self.spatial_stride}, got {height}x{width}"
            )
        return (
            self.latent_channels,
            1 + (num_frames - 1) // self.temporal_stride,
            height // self.spatial_stride,
            width // self.spatial_stride,
        )

    def _dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    @torch.no_grad()
    def encode(self, video: Tensor) -> Tensor:
        """Normalised latents (posterior mean) of a video [B, 3, F, H, W] in [-1, 1]."""
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"video must be [B, 3, F, H, W], got shape {tuple(video.shape)}")
        self.latent_shape(*video.shape[2:])
        mu = self.vae.encode(video.to(self._dtype())).latent_dist.mean
        return ((mu.float() - self.latents_mean) / self.latents_std).to(mu.dtype)

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        """Video [B, 3, F, H, W] in [-1, 1] of normalised latents [B, z_dim, F', H', W']."""
        if latents.dim() != 5 or latents.shape[1] != self.latent_channels:
            raise ValueError(
                f"latents must be [B, {self.latent_channels}, F, H, W], got shape {tuple(latents.shape)}"
            )
        z = latents.float() * self.latents_std + self.latents_mean
        return self.vae.decode(z.to(self._dtype())).sample

    def forward(self, video: Tensor) -> Tensor:
        """Same as `encode`."""
        return self.encode(video)
