"""One meaning of "step": the training iteration.

An iteration is one training batch of the run (`trainer.max_steps` of them; with
`trainer.accumulate_grad_batches` = k, k micro-batches, i.e. k `training_step` calls). Every file
name (`checkpoints/step000060.ckpt`, `samples/step000060.mp4`, `eval/curves_step000060.png`), every
logged x-axis and every `*_every_n_steps` setting counts iterations. Lightning's `global_step` counts
optimiser steps instead (a two-optimiser distillation run at iteration 72 has taken 72 critic and 15
generator steps: `global_step` 87); it is logged as its own key, `trainer/optimizer_steps`.

The count is Lightning's fit-loop batch counter, which checkpoints restore, so a resumed run
continues the numbering; checkpoints also record it under `iteration` for tools that read them.
"""

from __future__ import annotations

from typing import Any

import lightning as L

#: the checkpoint key holding the iteration it was written at
CHECKPOINT_KEY = "iteration"


def micro_batches_per_iteration(trainer: L.Trainer) -> int:
    """Batches that make one iteration: the module's own accumulation (manual optimisation) or
    Lightning's (automatic)."""
    module = trainer.lightning_module
    return max(1, int(getattr(module, "micro_batches_per_iteration", trainer.accumulate_grad_batches)))


def iteration(trainer: L.Trainer) -> int:
    """Training iterations done in the run, the current one included at the end of its last batch
    (0 before the first; a resumed run starts at its checkpoint's)."""
    return max(0, trainer.fit_loop.total_batch_idx + 1) // micro_batches_per_iteration(trainer)


def iteration_in_progress(trainer: L.Trainer) -> int:
    """During a batch: the 1-based iteration that batch belongs to (a micro-batch included)."""
    per = micro_batches_per_iteration(trainer)
    return (max(0, trainer.fit_loop.total_batch_idx + 1) + per - 1) // per


def checkpoint_iteration(checkpoint: dict[str, Any]) -> int:
    """The iteration a checkpoint dictionary was written at (checkpoints of runs before the key was
    recorded: the fit loop's processed batches)."""
    if CHECKPOINT_KEY in checkpoint:
        return int(checkpoint[CHECKPOINT_KEY])
    loop = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.batch_progress", {})
    return int(loop.get("total", {}).get("processed", 0))


class IterationCounter(L.Callback):
    """Log Lightning's optimiser steps as `trainer/optimizer_steps` (the x-axis is the iteration) and
    record the iteration in every checkpoint."""

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:  # noqa: D102
        module.log("trainer/optimizer_steps", float(trainer.global_step), on_step=True, on_epoch=False,
                   batch_size=1)  # fmt: skip

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]) -> None:  # noqa: D102
        checkpoint[CHECKPOINT_KEY] = iteration(trainer)
