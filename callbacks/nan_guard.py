"""Stop a diverging run before it overwrites a good checkpoint.

A non-finite logged training term (`train/loss`, `train/critic_loss`, `train/grad_norm`, ...) or
gradient raises `DivergedError` with one line naming the iteration and the term. Automatic
optimisation is checked before each optimiser step (the bad update is never applied); every
paradigm is checked at the end of each batch, which runs before Lightning's `ModelCheckpoint`
(checkpoint callbacks always run last) and an exception ends fitting without `on_train_end`, so
`last.ckpt` keeps the last good step and `ckpt_path=auto` resumes from it. Under several ranks the
decision is reduced, so every rank stops together.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from callbacks.iteration import iteration_in_progress
from forcing.errors import DivergedError


def _local(t: torch.Tensor) -> torch.Tensor:
    """The local shard of a DTensor (FSDP2), else the tensor."""
    return t.to_local() if hasattr(t, "to_local") else t


class NonFiniteGuard(L.Callback):
    """Raise `DivergedError` at the first non-finite `train/*` value or gradient."""

    def on_before_optimizer_step(self, trainer: L.Trainer, module: L.LightningModule, optimizer: Any) -> None:  # noqa: D102
        if not module.automatic_optimization:
            return  # manual steps: checked at the end of the batch (the terms are logged after the steps)
        bad = self.bad_metric(trainer)
        if bad is None and not self.finite_gradients(optimizer):
            index = next((i for i, o in enumerate(trainer.optimizers) if o is optimizer), 0)
            bad = f"gradient of optimiser {index}"
        self.check(trainer, module, bad)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:  # noqa: D102
        self.check(trainer, module, self.bad_metric(trainer))

    @staticmethod
    def bad_metric(trainer: L.Trainer) -> str | None:
        """`key=value` of the first non-finite logged training value (loss terms first), or None."""
        train = [(k, float(v)) for k, v in trainer.callback_metrics.items() if k.startswith("train/")]
        bad = [(k, v) for k, v in train if not math.isfinite(v)]
        bad.sort(key=lambda item: "loss" not in item[0])
        return f"{bad[0][0]}={bad[0][1]}" if bad else None

    @staticmethod
    def finite_gradients(optimizer: Any) -> bool:
        """Whether every gradient of `optimizer`'s parameters is finite (local shards)."""
        grads = [_local(p.grad) for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return True
        return bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())

    def check(self, trainer: L.Trainer, module: L.LightningModule, bad: str | None) -> None:
        """Raise on every rank when any rank found `bad` (a description of the non-finite value)."""
        if not trainer.strategy.reduce_boolean_decision(bad is not None, all=False):
            return
        ckpt = getattr(trainer.checkpoint_callback, "last_model_path", "") or ""
        kept = f"the last good checkpoint is {ckpt}: resume it with ckpt_path=auto" if ckpt else "no checkpoint was written yet"
        raise DivergedError(
            f"training diverged at iteration {iteration_in_progress(trainer)} ({trainer.global_step} optimiser steps done): "
            f"{bad or 'a non-finite value on another rank'}; stopped before checkpointing it, {kept} "
            f"(e.g. with a lower optim.lr)"
        )
