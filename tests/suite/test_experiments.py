"""Every experiment runs `trainer.fast_dev_run=1` on CPU, with its own world (batch, validation
size, pairs) as a user would type it; only the backbone is the tiny one, to keep the suite fast."""

from __future__ import annotations

import math

import pytest

from lightning_modules.launch import launch
from tests.suite.helpers import EXPERIMENTS, LossRecorder, compose_run


def test_experiments_exist() -> None:
    """The paper-table rows this suite promises are experiment files."""
    for name in ("shapes_teacher", "teacher_forcing", "teacher_forcing_framewise", "diffusion_forcing",
                 "diffusion_forcing_framewise"):
        assert name in EXPERIMENTS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_fast_dev_run(experiment: str, tmp_path) -> None:
    cfg = compose_run(f"experiment={experiment}", "trainer.fast_dev_run=1", "model=tiny", f"paths.runs={tmp_path / 'runs'}",
                      "trainer.enable_progress_bar=false", "callbacks.eval_every_n_steps=0")  # fmt: skip
    recorder = LossRecorder()
    trainer = launch(cfg, extra_callbacks=[recorder])
    assert trainer.global_step >= 1
    assert recorder.losses and all(math.isfinite(x) for x in recorder.losses)
