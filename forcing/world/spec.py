"""Clip specifications: what a shapes-world video contains, sampled from an integer seed."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from forcing.world.palette import BACKGROUNDS, COLOURS, DIRECTIONS, KINDS, SIZE_RANGE, SPEEDS, speed_name


@dataclass(frozen=True)
class ShapeSpec:
    """One moving shape, in resolution-independent units.

    Attributes:
        kind: one of `KINDS`.
        colour: a name of `COLOURS`.
        size: half-extent (radius) in units of min(height, width); the shape fits [-r, r]^2.
        position: initial centre (px, py), each in [0, 1] as a fraction of the free range of
            the centre along that axis ([r, width - r] in pixels; 0 = touching the left/top wall).
        velocity: (vx, vy) in units of min(height, width) per frame, x right and y down.
    """

    kind: str
    colour: str
    size: float
    position: tuple[float, float]
    velocity: tuple[float, float]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown shape kind {self.kind!r}; expected one of {KINDS}")
        if self.colour not in COLOURS:
            raise ValueError(f"unknown shape colour {self.colour!r}; expected one of {tuple(COLOURS)}")
        if not 0.0 < self.size < 0.5:
            raise ValueError(f"shape size must be in (0, 0.5) of the frame, got {self.size}")
        if not all(0.0 <= p <= 1.0 for p in self.position):
            raise ValueError(f"shape position must be in [0, 1]^2, got {self.position}")

    @property
    def speed(self) -> float:
        """Speed in units of min(height, width) per frame."""
        return math.hypot(*self.velocity)


@dataclass(frozen=True)
class ClipSpec:
    """A shapes-world clip: a background and shapes drawn in list order (later on top)."""

    background: str
    shapes: tuple[ShapeSpec, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise ValueError(f"unknown background {self.background!r}; expected one of {tuple(BACKGROUNDS)}")
        object.__setattr__(self, "shapes", tuple(self.shapes))

    @classmethod
    def sample(
        cls,
        seed: int,
        max_shapes: int = 3,
        min_shapes: int = 1,
        kinds: Sequence[str] = KINDS,
        speeds: Sequence[str] = tuple(SPEEDS),
    ) -> ClipSpec:
        """Draw a clip deterministically from `seed` (own `random.Random`, never the global RNG).

        The number of shapes is uniform in [min_shapes, max_shapes]; colours are distinct within
        a clip (so a colour names a shape); directions are exact compass directions of
        `DIRECTIONS`; speeds are uniform within a class of `SPEEDS`.
        """
        if not 1 <= min_shapes <= max_shapes <= len(COLOURS):
            raise ValueError(
                f"need 1 <= min_shapes <= max_shapes <= {len(COLOURS)}, got {min_shapes}, {max_shapes}"
            )
        rng = random.Random(int(seed))
        background = rng.choice(sorted(BACKGROUNDS))
        count = rng.randint(min_shapes, max_shapes)
        colours = rng.sample(sorted(COLOURS), count)
        shapes = []
        for colour in colours:
            kind = rng.choice(list(kinds))
            size = rng.uniform(*SIZE_RANGE)
            position = (rng.random(), rng.random())
            dx, dy = DIRECTIONS[rng.choice(list(DIRECTIONS))]
            speed = rng.uniform(*SPEEDS[rng.choice(list(speeds))])
            shapes.append(ShapeSpec(kind, colour, size, position, (speed * dx, speed * dy)))
        return cls(background, tuple(shapes))

    def another_clip(self, seed: int) -> ClipSpec:
        """Another clip of the same prompt, drawn from `seed`: background, colours, kinds, drawing order,
        directions and speed classes kept; what the prompt leaves free (size, position, the speed within
        its class) redrawn as `sample` draws it. What a perfect prompt-conditioned generator could show:
        the metrics' ceiling for a generator (`experiments/calibration`)."""
        rng = random.Random(int(seed))
        shapes = []
        for s in self.shapes:
            speed = rng.uniform(*SPEEDS[speed_name(s.speed)])
            ux, uy = s.velocity[0] / s.speed, s.velocity[1] / s.speed
            position = (rng.random(), rng.random())
            shapes.append(ShapeSpec(s.kind, s.colour, rng.uniform(*SIZE_RANGE), position, (speed * ux, speed * uy)))
        return ClipSpec(self.background, tuple(shapes))

    def at_bounds(self, high: bool) -> ClipSpec:
        """This clip with every size and speed at the low (or high) end of what its prompt allows
        (`SIZE_RANGE`, the speed class of `SPEEDS`); kinds, colours, positions and directions kept.
        The two bound clips and the clip itself span what a prompt-conditioned video may show
        (`forcing.eval.envelope`)."""
        end = 1 if high else 0
        shapes = []
        for s in self.shapes:
            speed = SPEEDS[speed_name(s.speed)][end]
            ux, uy = s.velocity[0] / s.speed, s.velocity[1] / s.speed
            shapes.append(ShapeSpec(s.kind, s.colour, SIZE_RANGE[end], s.position, (speed * ux, speed * uy)))
        return ClipSpec(self.background, tuple(shapes))
