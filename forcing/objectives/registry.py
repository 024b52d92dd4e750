"""Name -> objective class registry, for Hydra configs (``objective.name: dmd | sid | gan``)."""

from __future__ import annotations

from typing import Any

from .base import DistributionMatching
from .dmd import DMD
from .gan import GANObjective
from .sid import SiD

OBJECTIVES: dict[str, type[DistributionMatching]] = {"dmd": DMD, "sid": SiD, "gan": GANObjective}


def register_objective(name: str, cls: type[DistributionMatching]) -> type[DistributionMatching]:
    """Add an objective class under ``name`` (returns ``cls``)."""
    OBJECTIVES[name] = cls
    return cls


def build_objective(name: str, **kwargs: Any) -> DistributionMatching:
    """Instantiate the objective registered as ``name`` with ``kwargs`` (e.g. ``dim=`` for "gan")."""
    try:
        cls = OBJECTIVES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; known: {sorted(OBJECTIVES)}") from None
    return cls(**kwargs)
