"""A progress bar over the run's training iterations (`trainer.max_steps`), not over epochs.

Lightning's bars count the batches of an epoch against optimiser steps: "Epoch 0/-2" (no epoch
limit) and "2/3" for `trainer.max_steps=2` of a two-optimiser paradigm. This one counts training
iterations of the whole run, resumed runs included (the bar starts where the checkpoint left off).
"""

from __future__ import annotations

import sys
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

from callbacks.iteration import iteration


class IterationProgressBar(TQDMProgressBar):
    """One bar "train: n/iterations" for the run."""

    def __init__(self, iterations: int, refresh_rate: int = 1) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self.iterations = int(iterations)
        self.start = 0

    def done(self, trainer: L.Trainer) -> int:
        """Iterations trained so far in the run (the current batch included at its end)."""
        return min(self.iterations, iteration(trainer))

    def init_train_tqdm(self) -> Tqdm:
        """Lightning's training bar, over the run's iterations from `self.start`."""
        return Tqdm(desc="train", total=self.iterations, initial=self.start, position=2 * self.process_position,
                    disable=self.is_disabled, leave=True, dynamic_ncols=True, file=sys.stdout, smoothing=0,
                    bar_format=self.BAR_FORMAT)  # fmt: skip

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:  # noqa: D102
        self.start = self.done(trainer)  # a resumed run starts where it left off
        self.train_progress_bar = self.init_train_tqdm()

    def on_train_epoch_start(self, trainer: L.Trainer, *_: Any) -> None:
        """One bar for the whole run: epochs do not reset it."""

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:  # noqa: D102
        bar = self.train_progress_bar
        n = self.done(trainer)
        if bar is not None and not bar.disable and self._should_update(n, bar.total):
            bar.n = n
            bar.set_postfix(self.get_metrics(trainer, module), refresh=False)
            bar.refresh()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Keep the bar open across epochs."""

    def get_metrics(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Any]:
        """The progress-bar metrics without Lightning's logger version (`v_num`)."""
        metrics = super().get_metrics(trainer, module)
        metrics.pop("v_num", None)
        return metrics
