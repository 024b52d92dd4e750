"""Exposure drift (brightness, chroma) and sharpness outside the prompt's envelope (the ground truth and its
size / speed bounds): 0 inside, signed distance outside."""

import torch

from forcing.eval import brightness, corrupt, frame_metrics, saturation, sharpness


def test_ground_truth_has_zero_drift(specs, videos):
    metrics = frame_metrics(videos, specs)
    assert metrics.brightness_drift.shape == (len(specs), videos.shape[2])
    assert metrics.brightness_drift.abs().max() == 0
    assert metrics.saturation_drift.abs().max() == 0
    assert metrics.sharpness.abs().max() == 0


def test_brightened_is_positive_and_darkened_negative(specs, videos):
    bright = frame_metrics(corrupt.brighten(videos, 0.3), specs)
    dark = frame_metrics(corrupt.darken(videos, 0.6), specs)
    # a white clip only brightens its shapes (within what their sizes allow), a black one barely darkens
    white = torch.tensor([s.background == "white" for s in specs])
    black = torch.tensor([s.background == "black" for s in specs])
    assert (bright.brightness_drift >= 0).all() and (bright.brightness_drift[~white] > 0).all()
    assert bright.brightness_drift.mean() > 0.05
    assert (dark.brightness_drift <= 0).all() and (dark.brightness_drift[~black] < 0).all()
    assert dark.brightness_drift.mean() < -0.05
    # washed out / faded: never more saturated; the envelope's shape areas absorb most of the chroma change
    assert (bright.saturation_drift <= 0).all() and (dark.saturation_drift <= 0).all()
    assert dark.saturation_drift.mean() < 0


def test_progressive_darkening_drifts_more_over_time(specs, videos):
    drift = frame_metrics(corrupt.drift(videos, final_factor=0.3), specs).brightness_drift.mean(0)
    assert drift[0] == 0
    assert (drift[1:] <= 0).all() and (drift[1:] <= drift[:-1] + 1e-6).all() and (drift[4:] < 0).all()
    assert drift[-1] < -0.15


def test_blur_lowers_and_noise_raises_sharpness(specs, videos):
    blurred = frame_metrics(corrupt.blur(videos), specs).sharpness
    assert (blurred < -0.2).all() and blurred.mean() < -0.8
    noisy = frame_metrics(corrupt.noise(videos, 0.2), specs).sharpness
    assert (noisy >= 0).all() and noisy.mean() > 0.6  # clipping on white backgrounds halves the noise


def test_statistics_on_known_frames():
    black = -torch.ones(1, 3, 1, 4, 4)
    white = torch.ones(1, 3, 1, 4, 4)
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1, 1).expand(1, 3, 1, 4, 4)
    assert brightness(black).item() == 0 and brightness(white).item() == 1
    assert abs(brightness(red).item() - 0.299) < 1e-6
    assert saturation(white).item() == 0 and saturation(black).item() == 0 and saturation(red).item() == 1
    assert sharpness(red).item() == 0
    assert brightness(white * 3).item() == 1  # out-of-range values are clamped like a display
