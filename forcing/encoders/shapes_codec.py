"""A small learned autoencoder of the shapes world: the world's "VAE".

Like Wan's VAE (8x spatial, 16 channels) it gives the DiT few, rich tokens: a 32x32 RGB frame becomes
a 4x4 grid of 16-channel latents, normalised to zero mean and unit variance per channel. It is per
frame (temporal stride 1), deterministic, and trained once (`forcing.encoders.shapes_codec_train`);
the weights ship as one safetensors file with their architecture and normalisation in its metadata.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from forcing.encoders.frozen import FrozenModule
from forcing.encoders.identity_codec import _check_video

#: the codec shipped with the repository (trained by `forcing.encoders.shapes_codec_train`)
SHIPPED_CODEC = Path(__file__).resolve().parents[1] / "assets" / "shapes_codec.safetensors"


@dataclass(frozen=True)
class ShapesAEConfig:
    """Architecture of the shapes autoencoder: `levels` stride-2 stages of `width` channels."""

    latent_channels: int = 16
    width: int = 48
    levels: int = 3  # spatial stride 2**levels

    @property
    def spatial_stride(self) -> int:
        return 2**self.levels


class _Residual(nn.Module):
    """x + conv(silu(conv(silu(x)))): a residual block at constant width (trains deep without norms)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.SiLU(), nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
                                  nn.Conv2d(width, width, 3, padding=1))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return x + self.body(x)


class ShapesAutoencoder(nn.Module):
    """Conv encoder (stride 2 per level) and decoder (nearest upsampling + convs), per frame."""

    def __init__(self, config: ShapesAEConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        enc: list[nn.Module] = [nn.Conv2d(3, w, 3, padding=1)]
        dec: list[nn.Module] = [nn.Conv2d(config.latent_channels, w, 3, padding=1)]
        for _ in range(config.levels):
            enc += [nn.Conv2d(w, w, 4, stride=2, padding=1), _Residual(w)]
            dec += [_Residual(w), nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w, w, 3, padding=1)]
        enc += [nn.SiLU(), nn.Conv2d(w, config.latent_channels, 3, padding=1)]
        dec += [nn.SiLU(), nn.Conv2d(w, 3, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        self.register_buffer("latent_mean", torch.zeros(config.latent_channels))
        self.register_buffer("latent_std", torch.ones(config.latent_channels))

    def encode_frames(self, frames: Tensor) -> Tensor:
        """[N, 3, H, W] in [-1, 1] -> normalised latents [N, C, H/s, W/s]."""
        z = self.encoder(frames)
        return (z - self.latent_mean.view(1, -1, 1, 1)) / self.latent_std.view(1, -1, 1, 1)

    def decode_frames(self, z: Tensor) -> Tensor:
        """Normalised latents [N, C, h, w] -> frames [N, 3, h*s, w*s] (unclamped)."""
        z = z * self.latent_std.view(1, -1, 1, 1) + self.latent_mean.view(1, -1, 1, 1)
        return self.decoder(z)


def _frames(x: Tensor) -> tuple[Tensor, int]:
    """[B, C, F, H, W] -> ([B*F, C, H, W], F)."""
    b, c, f, h, w = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w), f


def _video(x: Tensor, f: int) -> Tensor:
    """[B*F, C, H, W] -> [B, C, F, H, W]."""
    n, c, h, w = x.shape
    return x.reshape(n // f, f, c, h, w).permute(0, 2, 1, 3, 4)


class ShapesCodec(FrozenModule):
    """Frozen shapes autoencoder: video [B, 3, F, H, W] in [-1, 1] <-> latents [B, C, F, H/8, W/8]."""

    temporal_stride: int = 1

    def __init__(self, autoencoder: ShapesAutoencoder) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        self.latent_channels = autoencoder.config.latent_channels
        self.spatial_stride = autoencoder.config.spatial_stride
        self.freeze()

    @classmethod
    def from_file(cls, path: str | Path) -> ShapesCodec:
        """Load a codec written by `save_shapes_codec` (architecture in the file's metadata)."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"shapes codec weights not found: {path}")
        with safe_open(str(path), "pt") as f:
            config = ShapesAEConfig(**json.loads(f.metadata()["config"]))
        ae = ShapesAutoencoder(config)
        ae.load_state_dict(load_file(str(path)))
        return cls(ae)

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, F, H, W) of the latents of a video of the given size."""
        s = self.spatial_stride
        if height % s or width % s:
            raise ValueError(f"frames {height}x{width} are not divisible by the codec's stride {s}")
        return (self.latent_channels, num_frames, height // s, width // s)

    def encode(self, video: Tensor) -> Tensor:
        """Latents of a video [B, 3, F, H, W]."""
        _check_video(video, 3, "video")
        frames, f = _frames(video)
        return _video(self.autoencoder.encode_frames(frames.to(self.autoencoder.latent_mean.dtype)), f)

    def decode(self, latents: Tensor) -> Tensor:
        """Video [B, 3, F, H, W] of latents [B, C, F, h, w] (unclamped)."""
        _check_video(latents, self.latent_channels, "latents")
        frames, f = _frames(latents)
        return _video(self.autoencoder.decode_frames(frames.to(self.autoencoder.latent_mean.dtype)), f)

    def forward(self, video: Tensor) -> Tensor:
        """Same as `encode`."""
        return self.encode(video)


def save_shapes_codec(ae: ShapesAutoencoder, path: str | Path, extra: dict | None = None) -> Path:
    """Write the autoencoder's weights and architecture (+ `extra` metadata) as one safetensors file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"config": json.dumps(asdict(ae.config)), **{k: json.dumps(v) for k, v in (extra or {}).items()}}
    save_file({k: v.detach().contiguous() for k, v in ae.state_dict().items()}, str(path), metadata=meta)
    return path
