"""Named vocabulary of the shapes world: colours, backgrounds, kinds, directions and speeds.

Every name here is a single word so that prompts tokenise by whitespace. RGB values are in
[-1, 1] (the video range). Velocities use image coordinates: x to the right, y downwards,
so "up" is negative y.
"""

from __future__ import annotations

import math


def _rgb(r: float, g: float, b: float) -> tuple[float, float, float]:
    """Map an RGB triple in [0, 1] to the video range [-1, 1]."""
    return (2.0 * r - 1.0, 2.0 * g - 1.0, 2.0 * b - 1.0)


#: Shape colours, name -> RGB in [-1, 1]. Disjoint from the background names.
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": _rgb(1.0, 0.0, 0.0),
    "green": _rgb(0.0, 1.0, 0.0),
    "blue": _rgb(0.0, 0.0, 1.0),
    "yellow": _rgb(1.0, 1.0, 0.0),
    "cyan": _rgb(0.0, 1.0, 1.0),
    "magenta": _rgb(1.0, 0.0, 1.0),
    "orange": _rgb(1.0, 0.5, 0.0),
}

#: Background colours, name -> RGB in [-1, 1].
BACKGROUNDS: dict[str, tuple[float, float, float]] = {
    "black": _rgb(0.0, 0.0, 0.0),
    "gray": _rgb(0.5, 0.5, 0.5),
    "white": _rgb(1.0, 1.0, 1.0),
}

#: Shape kinds, in a fixed order. Every kind fits the square [-r, r]^2 of its size r.
KINDS: tuple[str, ...] = ("circle", "square", "triangle", "diamond")

_D = 1.0 / math.sqrt(2.0)

#: The eight compass-like directions, name -> unit vector (x right, y down).
DIRECTIONS: dict[str, tuple[float, float]] = {
    "right": (1.0, 0.0),
    "up-right": (_D, -_D),
    "up": (0.0, -1.0),
    "up-left": (-_D, -_D),
    "left": (-1.0, 0.0),
    "down-left": (-_D, _D),
    "down": (0.0, 1.0),
    "down-right": (_D, _D),
}

#: Speed classes, prompt word -> (low, high) speed in units of min(height, width) per frame.
#: At 32x32 "slowly" is 0.5-0.8 px/frame and "fast" 1.4-1.9 px/frame.
SPEEDS: dict[str, tuple[float, float]] = {
    "slowly": (0.015, 0.025),
    "fast": (0.045, 0.06),
}

#: Size range of a shape: half-extent ("radius") in units of min(height, width).
SIZE_RANGE: tuple[float, float] = (0.12, 0.2)


def direction_name(vx: float, vy: float) -> str:
    """Name of the compass direction (of `DIRECTIONS`) nearest to the velocity (x right, y down)."""
    if vx == 0.0 and vy == 0.0:
        raise ValueError("a zero velocity has no direction")
    angle = math.atan2(-vy, vx)  # counter-clockwise from "right", with "up" at +90 degrees
    sector = round(angle / (math.pi / 4.0)) % 8
    return list(DIRECTIONS)[sector]


def speed_name(speed: float) -> str:
    """Name of the speed class of a speed (units of min(height, width) per frame)."""
    slow_high, fast_low = SPEEDS["slowly"][1], SPEEDS["fast"][0]
    return "slowly" if speed < 0.5 * (slow_high + fast_low) else "fast"
