"""Motion: object speeds, generated / ground-truth motion ratio."""

import dataclasses
import math

import torch

from forcing.eval import corrupt, frame_metrics, ground_truth, motion_ratio


def test_ground_truth_speed_matches_the_spec(specs, videos):
    m = frame_metrics(videos, specs)
    assert m.speed[:, 0].isnan().all()
    for b, spec in enumerate(specs):
        if len(spec.shapes) != 1:
            continue
        true = math.hypot(*spec.shapes[0].velocity) * 32
        assert abs(float(m.speed[b, 1:].nanmedian()) - true) < 0.05 * true
    assert torch.allclose(m.speed, m.speed_reference, atol=0, rtol=0, equal_nan=True)
    assert motion_ratio(m.speed, m.speed_reference, range(0, videos.shape[2])).sub(1).abs().max() == 0
    assert m.motion.abs().max() == 0


def test_frozen_video_has_no_motion(specs, videos):
    m = frame_metrics(corrupt.freeze(videos), specs)
    assert m.speed[:, 1:].nan_to_num(0).abs().max() == 0
    assert motion_ratio(m.speed, m.speed_reference, range(0, videos.shape[2])).max() == 0
    assert (m.motion < -1).all() and m.motion.mean() < -2.5


def test_twice_as_fast_reads_about_two(specs, videos):
    fast = [
        dataclasses.replace(
            s,
            shapes=tuple(
                dataclasses.replace(x, velocity=(2 * x.velocity[0], 2 * x.velocity[1])) for x in s.shapes
            ),
        )
        for s in specs
    ]
    m = frame_metrics(ground_truth(fast, videos.shape[2], 32, 32), specs)
    ratio = motion_ratio(m.speed, m.speed_reference, range(0, videos.shape[2]))
    assert ((ratio > 1.5) & (ratio < 2.2)).all(), ratio
    assert m.motion.mean() > 0.4  # log2 of the speed over the top of its class's range (2x: up to 1)


def test_single_frame_has_undefined_speed(specs, videos):
    m = frame_metrics(videos[:, :, :1], specs)
    assert m.speed.shape == (len(specs), 1) and m.speed.isnan().all()
    assert m.motion.abs().max() == 0
