"""Checkpoints every n training iterations, named by iteration (`step000060.ckpt`), `last.ckpt` linking
to the newest, the newest `keep_last_k` kept.

Lightning's `ModelCheckpoint(every_n_train_steps=n)` counts and names optimiser steps, which a
two-optimiser paradigm takes more of than iterations (callbacks/iteration.py). This subclass keeps
its saving, `last.ckpt` and resume behaviour and replaces the trigger and the `step` of the file name
with the iteration. Every checkpoint is written under a temporary name and renamed once complete
(`lightning_modules.checkpoint_files`), so `ckpt_path=auto` never picks a partial write; older step
checkpoints are deleted only after that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from weakref import proxy

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor

from callbacks.iteration import iteration
from lightning_modules.checkpoint_files import partial_path, prune, publish, remove


class IterationCheckpoint(ModelCheckpoint):
    """Save `step{iteration:06d}.ckpt` every `every_n_iterations` iterations (0: only `last.ckpt` at the
    end), link `last.ckpt` to it, and keep the newest `keep_last_k` step checkpoints (-1: all)."""

    def __init__(self, dirpath: str | Path, every_n_iterations: int, keep_last_k: int = -1) -> None:
        super().__init__(
            dirpath=str(dirpath),
            filename="step{step:06d}",
            auto_insert_metric_name=False,
            every_n_train_steps=0,  # the trigger is ours (on_train_batch_end)
            every_n_epochs=0,
            save_top_k=-1,  # pruning is ours (`prune`, after the new checkpoint is complete)
            save_last="link",  # a DCP checkpoint is a directory of shards: link it, do not write it twice
            enable_version_counter=False,  # one name per iteration (a rewrite replaces it atomically)
        )
        self.every_n_iterations = int(every_n_iterations)
        self.keep_last_k = int(keep_last_k)

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
        if trainer.is_global_zero:
            prune(Path(self.dirpath), self.keep_last_k)

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        """Lightning's save, atomic: written (by every rank for DCP) under `<name>.partial`, renamed by
        rank 0 once every rank is done."""
        final = Path(filepath)
        partial = partial_path(final)
        if trainer.is_global_zero:
            remove(partial)  # the leftover of an interrupted write
        trainer.strategy.barrier("IterationCheckpoint.clear")
        trainer.save_checkpoint(partial, self.save_weights_only)  # ends with a barrier
        if trainer.is_global_zero:
            publish(partial, final)
        trainer.strategy.barrier("IterationCheckpoint.publish")
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = str(final)
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def _monitor_candidates(self, trainer: L.Trainer) -> dict[str, Tensor]:
        """Lightning's candidates with `step` = the iteration (the file name's number)."""
        candidates = super()._monitor_candidates(trainer)
        candidates["step"] = torch.tensor(iteration(trainer))
        return candidates
