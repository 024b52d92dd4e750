"""Toy velocity networks with the backbone's call signature, for the diffusion tests."""

from __future__ import annotations

import pytest
from torch import Tensor, nn

from forcing.diffusion import expand_sigma, sigma_from_t


class PointMassModel(nn.Module):
    """Exact velocity field of a point-mass data distribution at ``target``: v = (x_t - x0*) / sigma.

    Conditional on the context: x0* = target + context.mean() (so cond and uncond differ). Records
    every call's arguments.
    """

    def __init__(self, target: Tensor):
        super().__init__()
        self.register_buffer("target", target)
        self.calls: list[dict] = []

    def forward(self, x, t, context, **kwargs):
        self.calls.append({"x": x.clone(), "t": t.clone(), "context": context, **kwargs})
        x0 = self.target + context.mean(dim=(1, 2)).reshape(-1, 1, 1, 1, 1)
        return (x - x0) / expand_sigma(sigma_from_t(t), x)


@pytest.fixture
def point_mass():
    """Factory: ``point_mass(target)`` -> :class:`PointMassModel`."""
    return PointMassModel
