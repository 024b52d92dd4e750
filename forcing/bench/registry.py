"""The section registry: `@section("name")` adds a benchmark (args -> markdown) to :data:`SECTIONS`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["SECTIONS", "section"]

SECTIONS: dict[str, Callable[[argparse.Namespace], str]] = {}


def section(
    name: str,
) -> Callable[[Callable[[argparse.Namespace], str]], Callable[[argparse.Namespace], str]]:
    """Register a benchmark section under `name` (a function args -> markdown)."""

    def register(fn: Callable[[argparse.Namespace], str]) -> Callable[[argparse.Namespace], str]:
        SECTIONS[name] = fn
        return fn

    return register
