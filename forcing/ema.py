"""Exponential moving average of a network's weights, shard-local (works on FSDP2 DTensors
without gathering: each rank updates the shards it holds).

Why not Lightning's ``lightning.pytorch.callbacks.EMAWeightAveraging`` (``WeightAveraging``,
Lightning 2.6): the papers need an EMA of the *generator* from a given step, used for sampling and,
in Causal Forcing's consistency distillation, as the target network inside ``training_step``. The
callback does not fit that:

- ``WeightAveraging.setup`` wraps the whole LightningModule in ``torch.optim.swa_utils.AveragedModel``
  (a deep copy): the frozen teacher / real score, the critic (fake score) and the text encoder would
  be copied and averaged too, several extra full copies at Wan-14B scale;
- it cannot shard: with ``configure_model`` (FSDP2) it warns that sharding is not supported and
  builds an unsharded copy, where :func:`ema_update` updates each rank's DTensor shards in place;
- the average is swapped into the module only around validation (``on_validation_epoch_start/end``)
  and copied over it at ``on_train_end``; there is no handle to call the EMA network inside
  ``training_step`` (the consistency target) or to sample with it while the raw weights train;
- it updates in ``on_train_batch_end`` whenever ``trainer.global_step`` advanced: with manual
  optimisation every critic step advances it, so the EMA would also decay on iterations where the
  generator did not change (Self Forcing steps the generator every ``ratio``-th iteration), unlike
  the papers' EMA per generator step (the modules call :func:`ema_update` after the generator's step,
  on gradient-accumulation boundaries);
- ``on_save_checkpoint`` replaces the checkpoint's ``state_dict`` with the average and moves the raw
  weights to ``current_model_state``; the suite's checkpoints keep ``generator.*`` and
  ``generator_ema.*`` side by side in ``state_dict`` (what ``load_pretrained(prefer="generator_ema")``,
  resume and ``python -m lightning_modules.export`` read).
"""

from __future__ import annotations

import torch
from torch import nn


def reshard(module: nn.Module) -> None:
    """Put every FSDP2-sharded submodule back in its sharded state (FSDP2 leaves the root's
    parameters unsharded after a forward, and `parameters()` then yields plain tensors)."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover - torch without FSDP2
        return
    for sub in module.modules():
        if isinstance(sub, FSDPModule):
            sub.reshard()


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float, step: int, start_step: int = 0) -> None:
    """ema <- decay * ema + (1 - decay) * model from `start_step` on; before it, ema <- model
    (Self Forcing: EMA 0.99 from step 200)."""
    reshard(ema)
    reshard(model)
    targets = list(ema.parameters())
    sources = [p.detach() for p in model.parameters()]
    if len(targets) != len(sources):
        raise ValueError("EMA and model have different parameter lists")
    if step < start_step:
        for t, s in zip(targets, sources):
            t.copy_(s)
        return
    for t, s in zip(targets, sources):
        t.lerp_(s, 1.0 - decay)  # EMA: theta_ema = decay theta_ema + (1 - decay) theta
