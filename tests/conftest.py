"""Shared test configuration: CPU by default, `gpu` tests skip without CUDA."""

import os
import tempfile

import pytest
import torch

# One artifact store per test session (teachers and initialised generators made by the fast
# prerequisite runs are shared by all tests, and by the FSDP2 worker processes).
os.environ.setdefault("FORCING_ARTIFACTS", tempfile.mkdtemp(prefix="forcing-test-artifacts-"))


def pytest_collection_modifyitems(config, items):  # noqa: D103
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
