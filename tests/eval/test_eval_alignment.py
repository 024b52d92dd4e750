"""Prompt alignment: the stated colours, kinds, directions and speeds that the video shows."""

import dataclasses

import torch

from forcing.eval import COLOUR_NAMES, corrupt, frame_metrics, ground_truth, prompt_alignment
from forcing.world import ClipSpec


def _alignment(video, specs, frames=range(0, 12)):
    m = frame_metrics(video, specs)
    return prompt_alignment(m.detections, m.reference_detections, specs, frames, 32, 32)


def _change(specs, change):
    return [
        dataclasses.replace(s, shapes=tuple(dataclasses.replace(x, **change(x)) for x in s.shapes))
        for s in specs
    ]


def test_ground_truth_is_fully_aligned_in_every_window(specs, videos):
    for start in (0, 12, 24):
        assert torch.equal(_alignment(videos, specs, range(start, start + 12)), torch.ones(len(specs)))


def test_many_clips_align_perfectly():
    specs = [ClipSpec.sample(seed) for seed in range(100, 124)]
    values = _alignment(ground_truth(specs, 12, 32, 32), specs)
    assert values.isnan().sum() == 0 and values.min() == 1


def test_frozen_video_fails_direction_and_speed(specs, videos):
    values = _alignment(corrupt.freeze(videos), specs)
    assert values.max() <= 0.75 and values.mean() < 0.6  # colours and kinds are still there


def test_reversed_motion_fails(specs, videos):
    reverse = _change(specs, lambda x: {"velocity": (-x.velocity[0], -x.velocity[1])})
    values = _alignment(ground_truth(reverse, 12, 32, 32), specs)
    assert values.max() < 1 and values.mean() < 0.85


def test_wrong_colours_fail(specs, videos):
    shifted = _change(specs, lambda x: {"colour": COLOUR_NAMES[(COLOUR_NAMES.index(x.colour) + 1) % 7]})
    values = _alignment(ground_truth(shifted, 12, 32, 32), specs)
    # a shifted colour can land on another stated shape's colour, which then counts as shown
    assert values.mean() < 0.5
