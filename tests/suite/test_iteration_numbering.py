"""One meaning of "step": files, x-axes and resume count training iterations, not optimiser steps.

A two-optimiser distillation run takes more optimiser steps than iterations (ratio 5: a critic step
every iteration, a generator step every fifth), so it is the case that tells the two apart.
"""

from __future__ import annotations

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from callbacks.iteration import checkpoint_iteration
from lightning_modules.launch import launch
from lightning_modules.self_forcing import SelfForcing
from tests.suite.helpers import compose_run, tiny_teacher

ITERATIONS = 4


def distill(tmp_path, max_steps: int, *extra: str) -> None:
    """Train self_forcing_dmd on the tiny backbone: checkpoints and samples every 2 iterations."""
    cfg = compose_run(
        "experiment=self_forcing_dmd", "model=tiny", f"paths.runs={tmp_path / 'runs'}",
        f"paths.artifacts={tmp_path / 'artifacts'}", f"teacher.path={tiny_teacher(tmp_path / 'teacher')}",
        "paradigm.generator_init.experiment=null", "name=sf", f"trainer.max_steps={max_steps}",
        "trainer.log_every_n_steps=1", "trainer.val_check_interval=1000", "trainer.enable_progress_bar=false",
        "callbacks.checkpoint_every_n_steps=2", "callbacks.samples_every_n_steps=2", "callbacks.num_samples=1",
        "callbacks.eval_every_n_steps=0", "callbacks.eval_at_start=false", "world.batch_size=2",
        "world.val_batch_size=2", "world.val_size=2", "world.num_frames=6", *extra,
    )  # fmt: skip
    launch(cfg)


def test_distillation_files_count_iterations_and_resume_continues(tmp_path) -> None:
    distill(tmp_path, 2)
    distill(tmp_path, ITERATIONS, "ckpt_path=auto")
    run = tmp_path / "runs" / "sf"
    names = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
    assert names == ["last.ckpt", "step000002.ckpt", "step000004.ckpt"]
    assert sorted(p.name for p in (run / "samples").glob("*.mp4")) == ["step000002.mp4", "step000004.mp4"]

    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    cfg = compose_run("experiment=self_forcing_dmd")
    assert checkpoint_iteration(last) == ITERATIONS
    assert checkpoint_iteration({k: v for k, v in last.items() if k != "iteration"}) == ITERATIONS  # loop state
    assert last["global_step"] == SelfForcing.optimizer_steps(cfg, ITERATIONS) > ITERATIONS

    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    steps = events.Scalars("trainer/optimizer_steps")
    assert steps[-1].value == SelfForcing.optimizer_steps(cfg, ITERATIONS)
    assert max(e.step for e in steps) < ITERATIONS + 1  # the x-axis is the iteration


def test_checkpoints_of_earlier_runs_give_their_iteration_from_the_loop_state() -> None:
    loops = {"fit_loop": {"epoch_loop.batch_progress": {"total": {"processed": 7}}}}
    assert checkpoint_iteration({"loops": loops, "global_step": 9}) == 7
    assert checkpoint_iteration({"iteration": 5, "loops": loops}) == 5
