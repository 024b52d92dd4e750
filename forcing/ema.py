"""Exponential moving average of a network's weights, shard-local (works on FSDP2 DTensors
without gathering: each rank updates the shards it holds)."""

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
