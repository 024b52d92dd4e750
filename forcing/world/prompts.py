"""The prompt grammar of the shapes world: clip -> prompt, prompt -> stated attributes.

Grammar (words separated by single spaces, lower case):

    prompt := shape ("and" shape)* "on" "a" BACKGROUND "background"
    shape  := ("a" | "an") COLOUR KIND "moving" DIRECTION SPEED

e.g. "a red circle moving right fast and a blue square moving up-left slowly on a black
background". Directions and speed classes describe the initial velocity (frame 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from forcing.world.palette import BACKGROUNDS, COLOURS, DIRECTIONS, KINDS, SPEEDS, direction_name, speed_name
from forcing.world.spec import ClipSpec


@dataclass(frozen=True)
class ShapeDescription:
    """What a prompt states about one shape."""

    colour: str
    kind: str
    direction: str
    speed: str


@dataclass(frozen=True)
class PromptDescription:
    """What a prompt states about a clip: the background and the shapes in drawing order."""

    background: str
    shapes: tuple[ShapeDescription, ...]


def _unique(words: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(words))


#: Every word the grammar can emit, in a fixed order (the toy text encoder's token ids).
VOCABULARY: tuple[str, ...] = _unique(
    ["a", "an", *COLOURS, *KINDS, "moving", *DIRECTIONS, *SPEEDS, "and", "on", *BACKGROUNDS, "background"]
)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def describe(spec: ClipSpec) -> PromptDescription:
    """The attributes of `spec` that its prompt states."""
    shapes = tuple(
        ShapeDescription(s.colour, s.kind, direction_name(*s.velocity), speed_name(s.speed))
        for s in spec.shapes
    )
    return PromptDescription(spec.background, shapes)


def prompt_for(spec: ClipSpec) -> str:
    """The prompt of a clip, e.g. "a red circle moving right fast on a black background"."""
    description = describe(spec)
    if not description.shapes:
        raise ValueError("the prompt grammar needs at least one shape")
    parts = [
        f"{_article(s.colour)} {s.colour} {s.kind} moving {s.direction} {s.speed}" for s in description.shapes
    ]
    return " and ".join(parts) + f" on a {description.background} background"


def tokenize(prompt: str) -> list[str]:
    """Split a prompt into lower-case words (the grammar's tokens)."""
    return prompt.lower().split()


def parse_prompt(prompt: str) -> PromptDescription:
    """Parse a prompt of the grammar back into the attributes it states.

    Raises ValueError naming the offending word when the prompt is not in the grammar.
    """
    words = tokenize(prompt)
    position = 0

    def take(expected: str, allowed) -> str:
        nonlocal position
        word = words[position] if position < len(words) else "<end of prompt>"
        if word not in allowed:
            raise ValueError(
                f"cannot parse prompt {prompt!r}: expected {expected} at word {position}, got {word!r}"
            )
        position += 1
        return word

    shapes = []
    while True:
        take("'a' or 'an'", ("a", "an"))
        colour = take("a colour", COLOURS)
        kind = take("a shape kind", KINDS)
        take("'moving'", ("moving",))
        direction = take("a direction", DIRECTIONS)
        speed = take("a speed", SPEEDS)
        shapes.append(ShapeDescription(colour, kind, direction, speed))
        if take("'and' or 'on'", ("and", "on")) == "on":
            break
    take("'a'", ("a",))
    background = take("a background colour", BACKGROUNDS)
    take("'background'", ("background",))
    if position != len(words):
        raise ValueError(
            f"cannot parse prompt {prompt!r}: unexpected words after 'background': {words[position:]}"
        )
    return PromptDescription(background, tuple(shapes))
