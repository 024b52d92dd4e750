"""FSDP2 through Lightning's ModelParallelStrategy, resuming a one-process checkpoint file on any number of ranks.

A DCP directory (written by FSDP2 on more than one rank) is Lightning's own path: DCP loads what the
module's `state_dict` asks for (the trainable state: `lightning_modules.frozen_state`) and reshards.
A file (written by one process) needs this subclass, because Lightning's file path
(`lightning.fabric.strategies.model_parallel._load_checkpoint`) would be wrong twice here: it loads
strictly against every parameter of the module, so the frozen networks that checkpoints leave out are
reported missing; and it re-keys each optimiser's state by the position of a parameter among all the
module's parameters, which fits the first optimiser only (the critic's would receive the generator's
moments). Here the weights are checked against the trainable `state_dict` keys and loaded with
`set_model_state_dict`, and each optimiser's state is keyed by the names of its own parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.strategies import ModelParallelStrategy
from torch import nn

from forcing.checkpoints import is_sharded
from forcing.errors import ConfigError


def optimizer_state_by_name(saved: dict[str, Any], optimizer: torch.optim.Optimizer, module: nn.Module) -> dict[str, Any]:
    """`saved` (torch's optimiser state dict, keyed by parameter position in `optimizer`) keyed by parameter
    name in `module` instead (as `torch.distributed.checkpoint.state_dict` expects); unchanged if it is."""
    if all(isinstance(key, str) for key in saved["state"]):
        return saved
    names = {id(p): name for name, p in module.named_parameters()}
    order = [names[id(p)] for group in optimizer.param_groups for p in group["params"]]
    return {
        "state": {order[index]: value for index, value in saved["state"].items()},
        "param_groups": [{**group, "params": [order[i] for i in group["params"]]} for group in saved["param_groups"]],
    }


class FSDP2Strategy(ModelParallelStrategy):
    """ModelParallelStrategy (FSDP2) that also resumes one-process checkpoint files of the trainable state."""

    def load_checkpoint(self, checkpoint_path: Any, weights_only: bool | None = None) -> dict[str, Any]:
        """A DCP directory: Lightning's load. A file: trainable weights (all of them, strictly) and each
        optimiser's state, distributed to this rank's shards; returns the rest of the checkpoint."""
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        path = Path(self.broadcast(checkpoint_path))
        if is_sharded(path):
            return super().load_checkpoint(path, weights_only)
        checkpoint = torch.load(path, mmap=True, map_location="cpu", weights_only=False)
        module = self.lightning_module
        weights = checkpoint.pop("state_dict")
        missing = sorted(set(module.state_dict()) - set(weights))
        if missing:
            raise ConfigError(f"checkpoint {path} lacks {len(missing)} trainable weights of this run (e.g. {missing[0]})")
        options = StateDictOptions(full_state_dict=True)
        set_model_state_dict(self.model, weights, options=options)
        for optimizer, saved in zip(self.optimizers, checkpoint.pop("optimizer_states", [])):
            state = optimizer_state_by_name(saved, optimizer, module)
            set_optimizer_state_dict(self.model, optimizer, optim_state_dict=state, options=options)
        return checkpoint
