"""The identity latent codec of the shapes world: latents are the pixels."""

from __future__ import annotations

from torch import Tensor

from forcing.encoders.frozen import FrozenModule


def _check_video(x: Tensor, channels: int, what: str) -> None:
    if x.dim() != 5 or x.shape[1] != channels:
        raise ValueError(f"{what} must be [B, {channels}, F, H, W], got shape {tuple(x.shape)}")


class IdentityCodec(FrozenModule):
    """`encode(video) = video`, `decode(latents) = latents`, for videos [B, 3, F, H, W] in [-1, 1]."""

    latent_channels: int = 3
    temporal_stride: int = 1
    spatial_stride: int = 1

    def __init__(self) -> None:
        super().__init__()
        self.freeze()

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, F, H, W) of the latents of a video of the given size."""
        return (self.latent_channels, num_frames, height, width)

    def encode(self, video: Tensor) -> Tensor:
        """Latents of a video [B, 3, F, H, W]: the video itself (no copy)."""
        _check_video(video, 3, "video")
        return video

    def decode(self, latents: Tensor) -> Tensor:
        """Video of latents [B, 3, F, H, W]: the latents themselves (no copy)."""
        _check_video(latents, 3, "latents")
        return latents

    def forward(self, video: Tensor) -> Tensor:
        """Same as `encode`."""
        return self.encode(video)
