"""Renderer and closed-form motion of the shapes world."""

import math

import pytest
import torch

from forcing.world import (
    BACKGROUNDS,
    COLOURS,
    KINDS,
    ClipSpec,
    ShapeSpec,
    coverage,
    render,
    state_at,
    trajectory,
)


def _one(kind: str, position=(0.5, 0.5), velocity=(0.0, 0.0), size=0.2, colour="red") -> ShapeSpec:
    return ShapeSpec(kind, colour, size, position, velocity)


def test_same_seed_same_clip_and_different_seeds_differ():
    a, b = render(ClipSpec.sample(7), 12), render(ClipSpec.sample(7), 12)
    assert ClipSpec.sample(7) == ClipSpec.sample(7)
    assert torch.equal(a, b)
    videos = [render(ClipSpec.sample(seed), 12) for seed in range(8)]
    for i in range(len(videos)):
        for j in range(i + 1, len(videos)):
            assert not torch.equal(videos[i], videos[j])


def test_sampling_ignores_and_keeps_global_rng():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    spec = ClipSpec.sample(3)
    torch.manual_seed(999)
    assert ClipSpec.sample(3) == spec
    torch.manual_seed(123)
    ClipSpec.sample(3)
    assert torch.equal(torch.get_rng_state(), state)


def test_output_shape_dtype_range():
    video = render(ClipSpec.sample(1), 5, 24, 40)
    assert video.shape == (3, 5, 24, 40) and video.dtype == torch.float32
    assert video.min() >= -1.0 and video.max() <= 1.0


@pytest.mark.parametrize("height,width", [(32, 32), (29, 33)])
def test_window_equals_frames_of_a_render_from_zero(height, width):
    for seed in range(6):
        spec = ClipSpec.sample(seed)
        full = render(spec, 90, height, width)
        for start, length in [(0, 12), (37, 10), (71, 19), (89, 1)]:
            window = render(spec, length, height, width, start_frame=start)
            assert torch.equal(window, full[:, start : start + length]), (seed, start)


def test_trajectory_matches_step_by_step_simulation():
    height, width, frames = 32, 40, 150
    for seed in range(10):
        spec = ClipSpec.sample(seed)
        centres, velocities = trajectory(spec, range(frames), height, width)
        scale = min(height, width)
        for s, shape in enumerate(spec.shapes):
            r = shape.size * scale
            for axis, extent in enumerate((width, height)):
                lo, hi = r, extent - r
                x, v = lo + shape.position[axis] * (hi - lo), shape.velocity[axis] * scale
                for t in range(frames):
                    assert centres[t, s, axis].item() == pytest.approx(x, abs=1e-6)
                    x += v
                    if x > hi:
                        x, v = 2 * hi - x, -v
                    elif x < lo:
                        x, v = 2 * lo - x, -v
                    # velocity reported at t+1 carries t+1 to t+2 (unless t+1 is at a wall)
                    if t + 1 < frames and lo + abs(v) < x < hi - abs(v):
                        assert velocities[t + 1, s, axis].item() == pytest.approx(v, abs=1e-9)


def test_velocity_at_a_wall_already_points_away():
    for position, velocity, expected in [((1.0, 0.5), (0.03, 0.0), -1), ((0.0, 0.5), (-0.03, 0.0), 1)]:
        spec = ClipSpec("black", (_one("circle", position, velocity),))
        vx = state_at(spec, [0], 32, 32)["velocities"][0, 0, 0].item()
        assert vx == pytest.approx(expected * 0.03 * 32)


def test_shapes_stay_inside_and_bounce_at_walls():
    height, width = 32, 32
    flips = 0
    for seed in range(20):
        spec = ClipSpec.sample(seed)
        state = state_at(spec, range(240), height, width)
        centres, velocities, sizes = state["centres"], state["velocities"], state["sizes"]
        lo = sizes.view(1, -1, 1) - 1e-4
        hi = torch.tensor([width, height]).view(1, 1, 2) - sizes.view(1, -1, 1) + 1e-4
        assert (centres >= lo).all() and (centres <= hi).all()
        # the velocity only changes sign, and only at a wall
        assert torch.allclose(velocities.abs(), velocities[:1].abs().expand_as(velocities))
        changed = torch.sign(velocities[1:]) != torch.sign(velocities[:-1])
        for t, s, axis in changed.nonzero().tolist():
            x = centres[t + 1, s, axis]
            near = min(x - lo[0, s, 0], hi[0, s, axis] - x)
            assert near <= velocities[t, s, axis].abs() + 1e-3
            flips += 1
        # positions advance by the reported velocity between bounces
        steps = centres[1:] - centres[:-1]
        smooth = ~changed
        assert torch.allclose(steps[smooth], velocities[:-1][smooth], atol=1e-3)
    assert flips > 20


def test_rendered_pixels_stay_inside_the_frame_and_match_the_state():
    for kind in ("circle", "square", "diamond"):
        for position in [(0.0, 0.0), (1.0, 0.3), (0.5, 1.0), (0.37, 0.61)]:
            spec = ClipSpec("black", (_one(kind, position),))
            alpha = coverage(spec, 1, 32, 32)[0, 0]
            state = state_at(spec, [0], 32, 32)
            cx, cy = state["centres"][0, 0].tolist()
            r = state["sizes"][0].item()
            xs = torch.arange(32) + 0.5
            mass = alpha.sum()
            assert (alpha.sum(0) * xs).sum() / mass == pytest.approx(cx, abs=0.05)
            assert (alpha.sum(1) * xs).sum() / mass == pytest.approx(cy, abs=0.05)
            # the full shape is inside: its mass is that of the same shape in the middle
            middle = coverage(ClipSpec("black", (_one(kind, (0.5, 0.5)),)), 1, 32, 32).sum()
            assert mass.item() == pytest.approx(middle.item(), rel=0.05)
            assert alpha[int(cy), int(cx)] == 1.0 and r > 1


def test_kinds_are_different_shapes_with_soft_edges():
    masks = [coverage(ClipSpec("black", (_one(kind),)), 1, 32, 32)[0, 0] for kind in KINDS]
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            assert (masks[i] - masks[j]).abs().sum() > 5
    for mask in masks:
        soft = ((mask > 0) & (mask < 1)).sum()
        assert soft > 4  # anti-aliased edge
    # ... about one pixel wide: across a vertical edge at most one partial pixel per side
    row = masks[KINDS.index("square")][16]
    assert ((row > 0) & (row < 1)).sum() <= 2
    wide = coverage(ClipSpec("black", (_one("square"),)), 1, 32, 32, softness=4.0)[0, 0, 16]
    assert ((wide > 0) & (wide < 1)).sum() >= 6


def test_triangle_points_up():
    alpha = coverage(ClipSpec("black", (_one("triangle"),)), 1, 32, 32)[0, 0]
    rows = alpha.sum(1)
    top = rows.nonzero().min().item()
    bottom = rows.nonzero().max().item()
    assert rows[top + 1] < rows[bottom - 1]


def test_colours_background_and_occlusion_order():
    first = _one("square", colour="red")
    second = _one("circle", colour="blue", size=0.1)
    video = render(ClipSpec("gray", (first, second)), 2, 32, 32)
    centre = video[:, 0, 16, 16]
    assert torch.equal(centre, torch.tensor(COLOURS["blue"]))
    assert torch.equal(video[:, 0, 16, 11], torch.tensor(COLOURS["red"]))
    assert torch.equal(video[:, 1, 0, 0], torch.tensor(BACKGROUNDS["gray"]))
    swapped = render(ClipSpec("gray", (second, first)), 1, 32, 32)
    assert torch.equal(swapped[:, 0, 16, 16], torch.tensor(COLOURS["red"]))


def test_motion_visible_at_32_pixels():
    for seed in range(30):
        state = state_at(ClipSpec.sample(seed), range(12), 32, 32)
        speed = state["velocities"][0].norm(dim=-1)
        assert (speed >= 0.4).all()
        assert (speed * 11 >= 4.0).all()


def test_resolution_independence():
    spec = ClipSpec.sample(5)
    small = state_at(spec, range(30), 32, 32)["centres"]
    large = state_at(spec, range(30), 64, 64)["centres"]
    assert torch.allclose(2 * small, large, atol=1e-4)


def test_invalid_specs_raise():
    with pytest.raises(ValueError, match="kind"):
        _one("hexagon")
    with pytest.raises(ValueError, match="colour"):
        _one("circle", colour="ochre")
    with pytest.raises(ValueError, match="background"):
        ClipSpec("plaid", ())
    assert math.isclose(_one("circle", velocity=(0.03, 0.04)).speed, 0.05)
