"""Shared fixtures of the evaluation tests: a small batch of shapes-world clips and a tiny feature net."""

import pytest
import torch

from forcing.eval import ShapesFeatureNet, ground_truth, train_feature_net
from forcing.world import ClipSpec

#: The test videos span three training horizons of 12 frames.
TRAIN_FRAMES = 12
HORIZONS = 3


@pytest.fixture(scope="session")
def specs() -> list[ClipSpec]:
    return [ClipSpec.sample(seed) for seed in range(6)]


@pytest.fixture(scope="session")
def videos(specs) -> torch.Tensor:
    """Ground-truth videos [6, 3, 36, 32, 32] of `specs`."""
    return ground_truth(specs, TRAIN_FRAMES * HORIZONS, 32, 32)


@pytest.fixture(scope="session")
def feature_net() -> ShapesFeatureNet:
    """A feature net trained for a few steps once per session (about two seconds)."""
    return train_feature_net(30, batch_size=8, pool_size=64, seed=0)
