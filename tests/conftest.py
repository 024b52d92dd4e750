"""Shared test configuration: CPU by default, `gpu` tests skip without CUDA."""

import os
import tempfile

import pytest
import torch

# One artifact store per test session (teachers and initialised generators made by the fast
# prerequisite runs are shared by all tests, and by the FSDP2 worker processes).
os.environ.setdefault("FORCING_ARTIFACTS", tempfile.mkdtemp(prefix="forcing-test-artifacts-"))
# The same for the prerequisites of `trainer.fast_dev_run` runs (debug=fast): their own store.
os.environ.setdefault("FORCING_FAST_DEV_RUN_ARTIFACTS", tempfile.mkdtemp(prefix="forcing-test-fast-artifacts-"))
# One thread per process: the suite's models are tiny (threading overhead dominates) and the
# FSDP2 tests run two processes on a 2-core machine; oversubscription made runs many times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


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


@pytest.fixture()
def model():
    """The tiny backbone with N(0, 0.2) weights (Wan's init zeroes the head: outputs would be 0)."""
    from forcing.models import CausalWanModel

    torch.manual_seed(0)
    m = CausalWanModel.from_preset("tiny")
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return m
