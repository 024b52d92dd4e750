"""The prompt's envelope: a generator is scored against what its prompt allows, not one clip's draw."""

import torch

from forcing.eval import corrupt, frame_metrics, ground_truth
from forcing.eval.detect import COLOUR_NAMES
from forcing.eval.envelope import outside, prompt_objects
from forcing.world import KINDS, SIZE_RANGE, SPEEDS, ClipSpec, prompt_for, speed_name


def test_outside_is_zero_inside_and_the_signed_distance_outside():
    x = torch.tensor([0.0, 1.0, 2.5, 5.0])
    assert torch.equal(outside(x, [torch.tensor(1.0), torch.tensor(3.0), torch.tensor(2.0)]),
                       torch.tensor([-1.0, 0.0, 0.0, 2.0]))  # fmt: skip


def test_bounds_keep_the_prompt_and_sit_at_the_ends_of_its_ranges():
    for seed in range(20):
        spec = ClipSpec.sample(seed)
        for high in (False, True):
            bound = spec.at_bounds(high)
            assert prompt_for(bound) == prompt_for(spec)
            for a, b in zip(spec.shapes, bound.shapes, strict=True):
                assert b.size == SIZE_RANGE[high] and b.position == a.position
                assert abs(b.speed - SPEEDS[speed_name(a.speed)][high]) < 1e-12


def test_prompt_objects_on_the_detector_axis():
    spec = ClipSpec.sample(3)
    count, present, kind = prompt_objects([spec], COLOUR_NAMES)
    assert count.tolist() == [len(spec.shapes)] and int(present.sum()) == len(spec.shapes)
    for shape in spec.shapes:
        assert KINDS[int(kind[0, COLOUR_NAMES.index(shape.colour)])] == shape.kind


def test_another_clip_of_the_same_prompt_scores_far_above_a_blur(specs, videos):
    """A perfect generator (another draw of what the prompt leaves free) scored ~23 against one clip;
    against the envelope it scores well above a 1.2 px blur of the clip itself."""
    other = ground_truth([s.another_clip(100 + i) for i, s in enumerate(specs)], videos.shape[2], 32, 32)
    perfect = float(frame_metrics(other, specs).stability.mean())
    blurred = float(frame_metrics(corrupt.blur(videos, size=5, sigma=1.2), specs).stability.mean())
    assert perfect > 50 and perfect > blurred + 15, (perfect, blurred)
