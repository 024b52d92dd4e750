"""Deterministic corruptions used to test the metrics."""

import torch

from forcing.eval import corrupt


def test_corruptions_keep_shape_and_range_and_are_deterministic(videos):
    for fn in (corrupt.brighten, corrupt.darken, corrupt.drift, corrupt.colour_shift, corrupt.freeze, corrupt.blur, corrupt.noise):
        out = fn(videos)
        assert out.shape == videos.shape
        assert out.min() >= -1.0 and out.max() <= 1.0
        assert torch.equal(out, fn(videos))
        assert not torch.equal(out, videos)


def test_noise_depends_on_seed_only():
    x = torch.zeros(1, 3, 2, 4, 4)
    assert torch.equal(corrupt.noise(x, seed=3), corrupt.noise(x, seed=3))
    assert not torch.equal(corrupt.noise(x, seed=3), corrupt.noise(x, seed=4))
    assert abs(float(corrupt.noise(torch.zeros(1, 3, 8, 32, 32), std=0.1).std()) - 0.1) < 0.01


def test_each_corruption_does_what_it_says(videos):
    assert (corrupt.brighten(videos) >= videos).all() and corrupt.brighten(videos).mean() > videos.mean()
    assert (corrupt.darken(videos) <= videos).all() and corrupt.darken(videos).mean() < videos.mean()
    frozen = corrupt.freeze(videos, start=5)
    assert torch.equal(frozen[:, :, :5], videos[:, :, :5])
    assert torch.equal(frozen[:, :, 5:], videos[:, :, 5:6].expand_as(frozen[:, :, 5:]))
    drifted = corrupt.drift(videos, final_factor=0.5)
    assert torch.allclose(drifted[:, :, 0], videos[:, :, 0])
    assert drifted[:, :, -1].mean() < videos[:, :, -1].mean()
    flat = torch.full((1, 3, 2, 8, 8), 0.25)
    assert torch.allclose(corrupt.blur(flat), flat) and torch.allclose(corrupt.blur(flat, 5, sigma=1.0), flat)
    step = torch.cat([-torch.ones(1, 3, 1, 8, 4), torch.ones(1, 3, 1, 8, 4)], -1)
    assert torch.allclose(corrupt.blur(step)[0, 0, 0, 0, 3:5], torch.tensor([-1 / 3, 1 / 3]))


def test_colour_shift_casts_colours_and_keeps_greys():
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1, 1).expand(1, 3, 2, 4, 4)
    grey = torch.full((1, 3, 2, 4, 4), 0.2)
    shifted = corrupt.colour_shift(red, 0.25)[0, :, 0, 0, 0]
    assert torch.allclose(shifted, torch.tensor([0.5, -1.0, -0.5]))  # R mixed with G, B with R
    assert torch.equal(corrupt.colour_shift(grey, 0.25), grey)
