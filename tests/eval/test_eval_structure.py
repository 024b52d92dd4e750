"""Object count, size, colour and kind fidelity against the prompt's envelope (the ground truth, its size /
speed bounds and the prompt)."""

import dataclasses

from forcing.eval import corrupt, frame_metrics, ground_truth
from forcing.world import KINDS, SIZE_RANGE


def _with(specs, change):
    """Specs with every shape replaced by `dataclasses.replace(shape, **change(shape))`."""
    return [
        dataclasses.replace(s, shapes=tuple(dataclasses.replace(x, **change(x)) for x in s.shapes))
        for s in specs
    ]


def test_ground_truth_is_structurally_perfect(specs, videos):
    m = frame_metrics(videos, specs)
    assert m.count_error.max() == 0 and m.size_error.max() == 0
    assert m.colour_fidelity.min() == 1 and m.shape_fidelity.min() == 1


def test_missing_object_counts_and_loses_its_colour(specs, videos):
    fewer = [dataclasses.replace(s, shapes=s.shapes[1:]) for s in specs]
    m = frame_metrics(ground_truth(fewer, videos.shape[2], 32, 32), specs)
    multi = [i for i, s in enumerate(specs) if len(s.shapes) > 1]
    assert multi, "the fixture needs a clip with several shapes"
    # where shapes overlap the ground truth shows one merged object too, so not every frame counts
    assert m.count_error[multi].max() == 1 and m.count_error[multi].mean() > 0.15
    # (the area left can lie within the sizes the prompt allows: count and colours catch the loss)
    assert m.colour_fidelity[multi].mean() < 0.8


def test_wrong_kinds_lower_shape_fidelity_most(specs, videos):
    other = _with(specs, lambda x: {"kind": KINDS[(KINDS.index(x.kind) + 1) % len(KINDS)]})
    m = frame_metrics(ground_truth(other, videos.shape[2], 32, 32), specs)
    assert m.shape_fidelity.mean() < 0.15
    assert m.colour_fidelity.mean() > m.shape_fidelity.mean() + 0.5  # colours stay (overlaps differ)


def test_grown_shapes_raise_size_error_only_past_the_prompts_range(specs, videos):
    within = _with(specs, lambda x: {"size": SIZE_RANGE[1]})  # the largest size the prompt allows
    # only occlusions that differ from the references' can count (the bounds move at other speeds)
    assert frame_metrics(ground_truth(within, videos.shape[2], 32, 32), specs).size_error.mean() < 0.05
    bigger = _with(specs, lambda x: {"size": 1.5 * SIZE_RANGE[1]})
    m = frame_metrics(ground_truth(bigger, videos.shape[2], 32, 32), specs)
    assert m.size_error.mean() > 0.6  # log2(1.5^2) = 1.17 where nothing overlaps


def test_frozen_video_keeps_structure_at_the_first_frames(specs, videos):
    m = frame_metrics(corrupt.freeze(videos), specs)
    assert m.count_error[:, 0].max() == 0 and m.colour_fidelity[:, 0].min() == 1
