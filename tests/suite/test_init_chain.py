"""Prerequisite chains are consistent: a generator is initialised from a model of its own block size."""

from __future__ import annotations

import pytest

from tests.suite.helpers import EXPERIMENTS, compose_run


def _frames_per_block(experiment: str) -> int | None:
    return compose_run(f"experiment={experiment}").paradigm.get("frames_per_block")


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_generator_init_matches_block_size(experiment: str) -> None:
    """A frame-wise student starts from a frame-wise init, a chunk-wise one from a chunk-wise init
    (the causal mask the init was trained with is the one the student rolls out with)."""
    init = compose_run(f"experiment={experiment}").paradigm.get("generator_init")
    if not init or not init.get("experiment"):
        pytest.skip("no generator init by experiment")
    assert _frames_per_block(init.experiment) == _frames_per_block(experiment), (
        f"{experiment} (frames_per_block {_frames_per_block(experiment)}) initialises from {init.experiment} "
        f"(frames_per_block {_frames_per_block(init.experiment)})"
    )
