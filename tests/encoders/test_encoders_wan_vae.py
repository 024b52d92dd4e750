"""Wan VAE codec on a tiny random AutoencoderKLWan config."""

import pytest
import torch

pytest.importorskip("diffusers")
from forcing.encoders import WanVAECodec, build_codec  # noqa: E402
from tests.suite.wan_folders import VAE_MEAN, VAE_STD, save_tiny_vae  # noqa: E402


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory):
    """A diffusers-style folder with vae/ holding a tiny random AutoencoderKLWan (z_dim 4)."""
    return save_tiny_vae(tmp_path_factory.mktemp("wan"))


def _stats():
    return torch.tensor(VAE_MEAN).view(1, 4, 1, 1, 1), torch.tensor(VAE_STD).view(1, 4, 1, 1, 1)


def test_wan_vae_shapes_and_strides(tiny_vae):
    codec = WanVAECodec.from_pretrained(tiny_vae)
    assert (codec.latent_channels, codec.temporal_stride, codec.spatial_stride) == (4, 4, 8)
    for frames in (1, 5, 9):
        video = torch.rand(2, 3, frames, 16, 24) * 2 - 1
        latents = codec.encode(video)
        assert latents.shape == (2, 4, 1 + (frames - 1) // 4, 2, 3)
        assert codec.latent_shape(frames, 16, 24) == tuple(latents.shape[1:])
        decoded = codec.decode(latents)
        assert decoded.shape == video.shape
        assert decoded.min() >= -1 and decoded.max() <= 1


def test_wan_vae_normalises_like_wan_and_decode_inverts(tiny_vae):
    codec = build_codec(kind="wan_vae", path=str(tiny_vae / "vae"))
    mean, std = _stats()
    video = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    with torch.no_grad():
        mu = codec.vae.encode(video).latent_dist.mean
        z = codec.encode(video)
        assert torch.allclose(z, (mu - mean) / std, atol=1e-6)
        assert not torch.allclose(z, mu, atol=1e-3)
        expected = codec.vae.decode(z * std + mean).sample
        assert torch.allclose(codec.decode(z), expected, atol=1e-6)
        assert torch.allclose(codec.decode(z), codec.vae.decode(mu).sample, atol=1e-5)


def test_wan_vae_is_frozen(tiny_vae):
    codec = WanVAECodec.from_pretrained(tiny_vae)
    assert all(not p.requires_grad for p in codec.parameters())
    codec.train()
    assert not codec.vae.training


def test_wan_vae_input_checks_and_missing_folder(tiny_vae, tmp_path):
    codec = WanVAECodec.from_pretrained(tiny_vae)
    with pytest.raises(ValueError, match="1 \\+ 4 k frames"):
        codec.encode(torch.zeros(1, 3, 4, 16, 16))
    with pytest.raises(ValueError, match="divisible by 8"):
        codec.encode(torch.zeros(1, 3, 5, 12, 16))
    with pytest.raises(ValueError, match="latents must be"):
        codec.decode(torch.zeros(1, 16, 2, 2, 2))
    with pytest.raises(FileNotFoundError, match="missing_vae.*AutoencoderKLWan"):
        WanVAECodec.from_pretrained(tmp_path / "missing_vae")
