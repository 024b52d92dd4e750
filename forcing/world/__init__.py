"""The shapes world: procedural videos of bouncing shapes, their prompts and exact ground truth."""

from forcing.world.motion import trajectory
from forcing.world.palette import (
    BACKGROUNDS,
    COLOURS,
    DIRECTIONS,
    KINDS,
    SIZE_RANGE,
    SPEEDS,
    direction_name,
    speed_name,
)
from forcing.world.prompts import (
    VOCABULARY,
    PromptDescription,
    ShapeDescription,
    describe,
    parse_prompt,
    prompt_for,
    tokenize,
)
from forcing.world.render import coverage, render, signed_distance
from forcing.world.spec import ClipSpec, ShapeSpec
from forcing.world.state import state_at

__all__ = [
    "BACKGROUNDS",
    "COLOURS",
    "DIRECTIONS",
    "KINDS",
    "SIZE_RANGE",
    "SPEEDS",
    "VOCABULARY",
    "ClipSpec",
    "PromptDescription",
    "ShapeDescription",
    "ShapeSpec",
    "coverage",
    "describe",
    "direction_name",
    "parse_prompt",
    "prompt_for",
    "render",
    "signed_distance",
    "speed_name",
    "state_at",
    "tokenize",
    "trajectory",
]
