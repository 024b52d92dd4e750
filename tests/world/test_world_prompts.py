"""Prompt grammar and ground-truth state of the shapes world."""

import math

import pytest
import torch

from forcing.world import (
    BACKGROUNDS,
    COLOURS,
    DIRECTIONS,
    SPEEDS,
    VOCABULARY,
    ClipSpec,
    PromptDescription,
    ShapeDescription,
    ShapeSpec,
    describe,
    direction_name,
    parse_prompt,
    prompt_for,
    state_at,
    tokenize,
)

SEEDS = range(300)


def test_example_prompt_parses():
    prompt = "a red circle moving right fast and a blue square moving up-left slowly on a black background"
    assert parse_prompt(prompt) == PromptDescription(
        "black",
        (
            ShapeDescription("red", "circle", "right", "fast"),
            ShapeDescription("blue", "square", "up-left", "slowly"),
        ),
    )


def test_prompt_parses_back_to_the_spec_attributes():
    for seed in SEEDS:
        spec = ClipSpec.sample(seed)
        parsed = parse_prompt(prompt_for(spec))
        assert parsed == describe(spec)
        # ... and describe() states the spec's own attributes
        assert parsed.background == spec.background
        assert len(parsed.shapes) == len(spec.shapes)
        for said, shape in zip(parsed.shapes, spec.shapes):
            assert (said.colour, said.kind) == (shape.colour, shape.kind)
            low, high = SPEEDS[said.speed]
            assert low <= shape.speed <= high
            dx, dy = DIRECTIONS[said.direction]
            assert shape.velocity[0] == pytest.approx(shape.speed * dx, abs=1e-12)
            assert shape.velocity[1] == pytest.approx(shape.speed * dy, abs=1e-12)


def test_prompt_matches_the_rendered_motion():
    for seed in range(50):
        spec = ClipSpec.sample(seed)
        state = state_at(spec, [0], 32, 32)
        for said, velocity in zip(parse_prompt(prompt_for(spec)).shapes, state["velocities"][0].tolist()):
            assert direction_name(*velocity) == said.direction


def test_every_prompt_word_is_in_the_vocabulary_and_every_word_is_used():
    used = set()
    for seed in SEEDS:
        words = tokenize(prompt_for(ClipSpec.sample(seed)))
        assert set(words) <= set(VOCABULARY), set(words) - set(VOCABULARY)
        used.update(words)
    assert used == set(VOCABULARY)
    assert len(VOCABULARY) == len(set(VOCABULARY))


def test_prompts_are_deterministic_and_fit_24_words():
    for seed in SEEDS:
        assert prompt_for(ClipSpec.sample(seed)) == prompt_for(ClipSpec.sample(seed))
        assert len(tokenize(prompt_for(ClipSpec.sample(seed)))) <= 24
    assert len({prompt_for(ClipSpec.sample(seed)) for seed in range(50)}) >= 45


def test_articles_and_colours_are_distinct_within_a_clip():
    for seed in SEEDS:
        spec = ClipSpec.sample(seed)
        assert len({s.colour for s in spec.shapes}) == len(spec.shapes)
        assert spec.background not in COLOURS
    orange = ShapeSpec("circle", "orange", 0.15, (0.5, 0.5), (0.02, 0.0))
    assert (
        prompt_for(ClipSpec("black", (orange,)))
        == "an orange circle moving right slowly on a black background"
    )


@pytest.mark.parametrize(
    "prompt,word",
    [
        ("a red circle moving sideways fast on a black background", "sideways"),
        ("a red circle moving right fast on a black", "<end of prompt>"),
        ("a red circle moving right fast on a black background please", "please"),
        ("a red blob moving right fast on a black background", "blob"),
        ("", "<end of prompt>"),
    ],
)
def test_malformed_prompts_raise_naming_the_word(prompt, word):
    with pytest.raises(ValueError, match=word):
        parse_prompt(prompt)


def test_direction_names():
    assert direction_name(1.0, 0.0) == "right"
    assert direction_name(0.0, -1.0) == "up"
    assert direction_name(-1.0, 1.0) == "down-left"
    for name, (dx, dy) in DIRECTIONS.items():
        assert direction_name(dx, dy) == name


def test_state_at_contents():
    spec = ClipSpec.sample(11, max_shapes=3, min_shapes=3)
    state = state_at(spec, torch.tensor([0, 5, 100]), 32, 48)
    assert state["centres"].shape == (3, 3, 2) and state["velocities"].shape == (3, 3, 2)
    assert state["frames"].tolist() == [0, 5, 100]
    assert state["kinds"] == [s.kind for s in spec.shapes]
    assert state["colour_names"] == [s.colour for s in spec.shapes]
    assert torch.equal(state["colours"], torch.tensor([COLOURS[s.colour] for s in spec.shapes]))
    assert torch.equal(state["background"], torch.tensor(BACKGROUNDS[spec.background]))
    assert torch.allclose(state["sizes"], torch.tensor([s.size * 32 for s in spec.shapes]))
    speeds = state["velocities"].norm(dim=-1)
    assert torch.allclose(speeds, torch.tensor([s.speed * 32 for s in spec.shapes]).expand(3, 3))
    assert math.isfinite(state["centres"].sum().item())


def test_another_clip_keeps_the_prompt_and_redraws_what_it_leaves_free():
    for seed in range(50):
        spec = ClipSpec.sample(seed)
        other = spec.another_clip(seed + 1000)
        assert prompt_for(other) == prompt_for(spec)
        assert other == spec.another_clip(seed + 1000)  # deterministic in its seed
        for a, b in zip(spec.shapes, other.shapes, strict=True):
            assert (a.kind, a.colour) == (b.kind, b.colour)
            assert a.size != b.size and a.position != b.position
            # same direction (unit vector), speed redrawn within its class
            assert abs(a.velocity[0] * b.velocity[1] - a.velocity[1] * b.velocity[0]) < 1e-12
            assert a.velocity[0] * b.velocity[0] + a.velocity[1] * b.velocity[1] > 0
