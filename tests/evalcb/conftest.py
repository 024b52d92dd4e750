"""Tiny trainings with the streaming evaluation on, shared by the evaluation-callback tests.

One sweep directory holds three runs: Teacher Forcing, Diffusion Forcing (both stream 2x the
training horizon) and the bidirectional teacher (cannot stream: evaluated at 1x with `sample`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_modules.launch import launch
from tests.suite.helpers import compose_run

#: (experiment, run name) of the sweep
RUNS = (("teacher_forcing", "tf"), ("diffusion_forcing", "df"), ("shapes_teacher", "teacher"))


def tiny_eval_run(runs: Path, experiment: str, name: str, *extra: str) -> Path:
    """Train model=tiny for 2 iterations on 6-frame clips with evaluation at iteration 2; the run dir."""
    cfg = compose_run(
        f"experiment={experiment}",
        "model=tiny",
        f"paths.runs={runs}",
        f"name={name}",
        "world.num_frames=6",
        "world.batch_size=2",
        "world.val_size=2",
        "paradigm.sample_steps=2",
        "trainer.max_steps=2",
        "trainer.log_every_n_steps=1",
        "trainer.val_check_interval=1000",
        "trainer.enable_progress_bar=false",
        "callbacks.checkpoint_every_n_steps=1000",
        "callbacks.samples_every_n_steps=0",
        "callbacks.eval_every_n_steps=2",
        "callbacks.eval_horizons=[1,2]",
        "callbacks.eval_num_videos=2",
        *extra,
    )
    launch(cfg)
    return runs / name


@pytest.fixture(scope="session")
def eval_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep directory with the three runs of `RUNS`."""
    runs = tmp_path_factory.mktemp("evalcb") / "sweep"
    for experiment, name in RUNS:
        tiny_eval_run(runs, experiment, name)
    return runs
