"""Checkpoints every n training iterations, named by iteration (`step000060.ckpt`) plus `last.ckpt`.

Lightning's `ModelCheckpoint(every_n_train_steps=n)` counts and names optimiser steps, which a
two-optimiser paradigm takes more of than iterations (callbacks/iteration.py). This subclass keeps
its saving, `last.ckpt` and resume behaviour and only replaces the trigger and the `step` of the
file name with the iteration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor

from callbacks.iteration import iteration


class IterationCheckpoint(ModelCheckpoint):
    """Save `step{iteration:06d}.ckpt` every `every_n_iterations` iterations (0: only `last.ckpt`
    at the end) and keep `last.ckpt` current."""

    def __init__(self, dirpath: str | Path, every_n_iterations: int) -> None:
        super().__init__(
            dirpath=str(dirpath),
            filename="step{step:06d}",
            auto_insert_metric_name=False,
            every_n_train_steps=0,  # the trigger is ours (on_train_batch_end)
            every_n_epochs=0,
            save_top_k=-1,
            save_last=True,
        )
        self.every_n_iterations = int(every_n_iterations)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        """Save at every `every_n_iterations`-th iteration (once: a trailing micro-batch is skipped)."""
        n = iteration(trainer)
        if self.every_n_iterations < 1 or n == 0 or n % self.every_n_iterations:
            return
        if self._should_skip_saving_checkpoint(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    def _monitor_candidates(self, trainer: L.Trainer) -> dict[str, Tensor]:
        """Lightning's candidates with `step` = the iteration (the file name's number)."""
        candidates = super()._monitor_candidates(trainer)
        candidates["step"] = torch.tensor(iteration(trainer))
        return candidates
