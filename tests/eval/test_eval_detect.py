"""The object detector on ground-truth renders recovers the exact state of the world."""

import itertools

import pytest
import torch

from forcing.eval import COLOUR_NAMES, detect, min_object_area
from forcing.eval.kinds import CENTROID_OFFSET
from forcing.world import BACKGROUNDS, KINDS, ClipSpec, ShapeSpec, render, state_at


def _separated(state, frame: int, margin: float = 2.0) -> bool:
    centres, sizes = state["centres"][frame], state["sizes"]
    return all(
        float((centres[i] - centres[j]).norm()) > 1.5 * float(sizes[i] + sizes[j]) + margin
        for i, j in itertools.combinations(range(len(sizes)), 2)
    )


def test_detector_recovers_count_colours_kinds_and_centres():
    checked = 0
    for seed in range(12):
        spec = ClipSpec.sample(seed)
        video = render(spec, 24, 32, 32)
        found = detect(video[None], [spec.background])
        state = state_at(spec, range(24), 32, 32)
        for f in range(24):
            if not _separated(state, f):
                continue
            checked += 1
            assert int(found.count[0, f]) == len(spec.shapes)
            assert int(found.present[0, f].sum()) == len(spec.shapes)
            for s, shape in enumerate(spec.shapes):
                c = COLOUR_NAMES.index(shape.colour)
                assert found.present[0, f, c]
                assert KINDS[int(found.kind[0, f, c])] == shape.kind, (seed, f, shape)
                centroid = state["centres"][f, s].clone()
                centroid[1] += CENTROID_OFFSET[shape.kind] * state["sizes"][s]
                assert float((found.centroid[0, f, c] - centroid).norm()) < 0.15, (seed, f, shape)
    assert checked > 50


@pytest.mark.parametrize("background", sorted(BACKGROUNDS))
def test_every_kind_and_size_is_classified(background):
    for kind, colour, size in itertools.product(KINDS, ("red", "cyan", "orange"), (0.12, 0.16, 0.2)):
        spec = ClipSpec(background, (ShapeSpec(kind, colour, size, (0.37, 0.61), (0.0, 0.0)),))
        found = detect(render(spec, 1, 32, 32)[None], [background])
        c = COLOUR_NAMES.index(colour)
        assert int(found.count[0, 0]) == 1
        assert KINDS[int(found.kind[0, 0, c])] == kind, (kind, colour, size)
        area = float(found.colour_area[0, 0, c])
        assert area == pytest.approx(float(found.area[0, 0]))
        assert area > 3.9 * min_object_area(32, 32)  # the smallest triangle is 4x the speck threshold (2 r_min^2)


def test_specks_below_min_area_are_ignored_and_absent_colours_are_nan():
    spec = ClipSpec("gray", (ShapeSpec("square", "red", 0.15, (0.2, 0.2), (0.0, 0.0)),))
    video = render(spec, 2, 32, 32)
    video[:, 1, 28, 28] = torch.tensor([0.0, 0.0, 1.0])  # a one-pixel blue speck
    found = detect(video[None], ["gray"])
    assert found.count[0].tolist() == [1, 1]
    blue = COLOUR_NAMES.index("blue")
    assert not found.present[0, :, blue].any()
    assert found.centroid[0, :, blue].isnan().all() and (found.kind[0, :, blue] == -1).all()


def test_touching_shapes_of_different_colours_stay_two_objects():
    """Per-colour components: two overlapping squares are two objects with their own colours and kinds
    (the foreground's components made them one object of one colour), and the blended band where their
    anti-aliased edges meet is no third object."""
    spec = ClipSpec("black", (ShapeSpec("square", "red", 0.15, (0.3, 0.5), (0.0, 0.0)),
                              ShapeSpec("square", "green", 0.15, (0.6, 0.5), (0.0, 0.0))))  # fmt: skip
    found = detect(render(spec, 1, 32, 32)[None], ["black"])
    red, green = COLOUR_NAMES.index("red"), COLOUR_NAMES.index("green")
    assert int(found.count[0, 0]) == 2
    assert bool(found.present[0, 0, red]) and bool(found.present[0, 0, green])
    assert KINDS[int(found.kind[0, 0, green])] == "square"
