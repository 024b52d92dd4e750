"""A diverging run stops with one line naming the iteration and the term, keeps its last good
checkpoint, and resumes from it with `ckpt_path=auto`: automatic (Teacher Forcing) and manual
(Self Forcing, two optimisers) optimisation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from forcing.errors import DivergedError
from lightning_modules.launch import launch
from tests.suite.helpers import LossRecorder, compose_run, tiny_teacher


class Poison(L.Callback):
    """At the start of iteration `at` (1-based): fill one generator weight with NaN (`what="weight"`:
    the losses turn NaN) or make its gradient infinite (`what="gradient"`: the losses stay finite)."""

    def __init__(self, at: int, what: str = "weight") -> None:
        self.at, self.what = at, what

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:  # noqa: D102
        if trainer.fit_loop.total_batch_idx + 1 != self.at:
            return
        weight = next(module.generator.parameters())
        if self.what == "gradient":
            weight.register_hook(lambda grad: grad * float("inf"))
        else:
            with torch.no_grad():
                weight.fill_(float("nan"))


def overrides(tmp_path: Path, experiment: str) -> list[str]:
    common = [
        f"experiment={experiment}", "model=tiny", f"paths.runs={tmp_path / 'runs'}", "name=run",
        "trainer.log_every_n_steps=1", "trainer.val_check_interval=1000", "trainer.enable_progress_bar=false",
        "callbacks.checkpoint_every_n_steps=2", "callbacks.samples_every_n_steps=0", "callbacks.eval_every_n_steps=0",
        "world.batch_size=2", "world.num_frames=6",
    ]  # fmt: skip
    if experiment == "self_forcing_dmd":
        common += [f"teacher.path={tiny_teacher(tmp_path / 'teacher')}", "paradigm.generator_init.experiment=null"]
    return common


def last_checkpoint(tmp_path: Path) -> dict[str, Any]:
    return torch.load(tmp_path / "runs" / "run" / "checkpoints" / "last.ckpt", weights_only=False)


@pytest.mark.parametrize(
    ("experiment", "what", "term", "saved_step"),
    [
        ("teacher_forcing", "weight", "train/loss=nan", 2),  # automatic: refused before the optimiser step
        ("teacher_forcing", "gradient", "gradient of optimiser 0", 2),  # finite loss, infinite gradient
        ("self_forcing_dmd", "weight", "train/critic_loss=nan", 2),  # manual: 3 optimiser steps by iteration 2
    ],
)
def test_non_finite_loss_stops_keeps_the_last_good_checkpoint_and_resumes(tmp_path, experiment, what, term,
                                                                          saved_step):  # fmt: skip
    cfg = compose_run(*overrides(tmp_path, experiment), "trainer.max_steps=5")
    with pytest.raises(DivergedError) as err:
        launch(cfg, extra_callbacks=[Poison(at=3, what=what)])
    message = str(err.value)
    assert "\n" not in message and "at iteration 3" in message and term in message, message
    assert "last.ckpt" in message and "ckpt_path=auto" in message
    ckpt = last_checkpoint(tmp_path)
    assert ckpt["iteration"] == saved_step  # the iteration before the NaN, not overwritten
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())

    recorder = LossRecorder()
    resumed = compose_run(*overrides(tmp_path, experiment), "trainer.max_steps=4", "ckpt_path=auto")
    trainer = launch(resumed, extra_callbacks=[recorder])
    assert trainer.fit_loop.total_batch_idx + 1 == 4  # iterations 3 and 4 after the resumed 2
    assert recorder.losses and all(math.isfinite(x) for x in recorder.losses)
