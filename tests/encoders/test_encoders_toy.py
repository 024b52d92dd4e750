"""The toy text encoder, the identity codec and the factories."""

import pytest
import torch

from forcing.encoders import IdentityCodec, ToyTextEncoder, build_codec, build_text_encoder
from forcing.world import ClipSpec, prompt_for, render

PROMPT = "a red circle moving right fast on a black background"


def test_toy_encoder_shape_padding_and_null_prompt():
    encoder = ToyTextEncoder()
    assert (encoder.dim, encoder.max_length) == (64, 24)
    out = encoder([PROMPT, "", "  "])
    assert out.shape == (3, 24, 64) and out.dtype == torch.float32
    assert (out[0, :10].abs().sum(-1) > 0).all()  # 10 words
    assert torch.equal(out[0, 10:], torch.zeros(14, 64))
    assert torch.equal(out[1], torch.zeros(24, 64))
    assert torch.equal(out[2], torch.zeros(24, 64))


def test_toy_encoder_is_deterministic_across_instances_and_processes():
    first, second = ToyTextEncoder(), ToyTextEncoder()
    assert torch.equal(first([PROMPT]), second([PROMPT]))
    out = first([PROMPT])
    # pinned values: the table comes from random.Random(0), identical in every process
    assert out.sum().item() == pytest.approx(325.4154052734375, abs=1e-3)
    expected = [0.94171541929245, -0.3965780735015869, -0.6797144412994385, 1.370503544807434]
    assert out[0, 0, :4].tolist() == pytest.approx(expected, abs=1e-6)
    assert not torch.equal(ToyTextEncoder(seed=1)([PROMPT]), out)


def test_toy_encoder_distinguishes_prompts_and_word_order():
    encoder = ToyTextEncoder()
    prompts = [prompt_for(ClipSpec.sample(seed)) for seed in range(20)]
    prompts = list(dict.fromkeys(prompts))
    out = encoder(prompts).flatten(1)
    distances = torch.cdist(out, out)
    assert (distances + torch.eye(len(prompts)) > 1e-3).all()
    swapped = "a blue square moving up slowly and a red circle moving right fast on a black background"
    original = "a red circle moving right fast and a blue square moving up slowly on a black background"
    assert not torch.allclose(encoder([swapped]), encoder([original]))


def test_toy_encoder_errors():
    encoder = ToyTextEncoder()
    with pytest.raises(ValueError, match="'giraffe'"):
        encoder(["a red giraffe moving right fast on a black background"])
    with pytest.raises(TypeError):
        encoder(PROMPT)
    with pytest.raises(ValueError, match="max_length"):
        ToyTextEncoder(max_length=8)([PROMPT])


def test_toy_encoder_is_frozen():
    encoder = ToyTextEncoder()
    assert list(encoder.parameters()) == []
    assert encoder.state_dict() == {}
    encoder.train()
    assert not encoder.training


def test_identity_codec_round_trip():
    codec = IdentityCodec()
    video = render(ClipSpec.sample(0), 12).unsqueeze(0).repeat(2, 1, 1, 1, 1)
    latents = codec.encode(video)
    assert latents.shape == (2, 3, 12, 32, 32)
    assert torch.equal(codec.decode(latents), video)
    assert (codec.latent_channels, codec.temporal_stride, codec.spatial_stride) == (3, 1, 1)
    assert codec.latent_shape(12, 32, 32) == (3, 12, 32, 32)
    with pytest.raises(ValueError, match="B, 3, F, H, W"):
        codec.encode(video[0])
    with pytest.raises(ValueError):
        codec.decode(torch.zeros(1, 4, 2, 8, 8))


def test_factories():
    encoder = build_text_encoder({"kind": "toy", "dim": 32}, max_length=30)
    assert isinstance(encoder, ToyTextEncoder) and (encoder.dim, encoder.max_length) == (32, 30)
    assert isinstance(build_text_encoder(), ToyTextEncoder)
    assert isinstance(build_codec(kind="identity"), IdentityCodec)
    with pytest.raises(ValueError, match="kind"):
        build_text_encoder(kind="clip")
    with pytest.raises(ValueError, match="kind"):
        build_codec(kind="vqgan")
    with pytest.raises(ValueError, match="path"):
        build_text_encoder(kind="umt5")
    with pytest.raises(ValueError, match="path"):
        build_codec(kind="wan_vae")
    with pytest.raises(TypeError):
        build_text_encoder(kind="toy", width=3)
