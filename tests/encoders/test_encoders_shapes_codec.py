"""The shapes world's learned codec: shapes, save/load, the factory, frozen behaviour."""

import pytest
import torch

from forcing.encoders import build_codec
from forcing.encoders.shapes_codec import ShapesAEConfig, ShapesAutoencoder, ShapesCodec, save_shapes_codec
from forcing.errors import ConfigError


@pytest.fixture()
def codec_file(tmp_path):
    torch.manual_seed(0)
    ae = ShapesAutoencoder(ShapesAEConfig(latent_channels=4, width=8, levels=2))
    ae.latent_mean.normal_()
    ae.latent_std.uniform_(0.5, 2.0)
    return save_shapes_codec(ae, tmp_path / "codec.safetensors", {"note": "test"}), ae


def test_latent_shapes_and_round_trip_of_the_normalisation(codec_file):
    path, ae = codec_file
    codec = build_codec(kind="shapes", path=str(path))
    video = torch.rand(2, 3, 5, 16, 16) * 2 - 1
    z = codec.encode(video)
    assert z.shape == (2, 4, 5, 4, 4) == (2, *codec.latent_shape(5, 16, 16))
    # frame f of the video is encoded on its own (per-frame codec)
    assert torch.allclose(z[:, :, 2], codec.encode(video[:, :, 2:3])[:, :, 0], atol=1e-6)
    # encode normalises with the stored mean/std, decode undoes it exactly
    raw = ae.encoder(video.permute(0, 2, 1, 3, 4).reshape(10, 3, 16, 16))
    assert torch.allclose(z.permute(0, 2, 1, 3, 4).reshape(10, 4, 4, 4),
                          (raw - ae.latent_mean.view(1, -1, 1, 1)) / ae.latent_std.view(1, -1, 1, 1), atol=1e-5)
    assert codec.decode(z).shape == video.shape


def test_saved_file_loads_bit_exact_and_frozen(codec_file):
    path, ae = codec_file
    codec = ShapesCodec.from_file(path)
    for k, v in ae.state_dict().items():
        assert torch.equal(codec.autoencoder.state_dict()[k], v), k
    assert not any(p.requires_grad for p in codec.parameters())
    codec.train()
    assert not codec.training


def test_bad_codec_arguments(tmp_path):
    with pytest.raises(ConfigError, match="takes only path"):
        build_codec(kind="shapes", path=str(tmp_path / "x"), dtype="bf16")
    with pytest.raises(FileNotFoundError, match="not found"):
        build_codec(kind="shapes", path=str(tmp_path / "missing.safetensors"))
    with pytest.raises(ValueError, match="divisible"):
        ShapesCodec(ShapesAutoencoder(ShapesAEConfig(latent_channels=4, width=8, levels=2))).latent_shape(3, 18, 16)
