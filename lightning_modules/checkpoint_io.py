"""Lightning's checkpoint IO for one process that also resumes DCP directories.

FSDP2 on several ranks resumes a DCP directory itself, on any number of ranks (DCP reshards on load).
One process without FSDP2 (`hardware.strategy=auto`) cannot: Lightning's single-device strategy
`torch.load`s the path. `DistributedCheckpointIO`, the checkpoint plugin of such runs, consolidates a
DCP directory first (`forcing.checkpoints.consolidate`): a 2-rank checkpoint resumes in one process.
Every other reader of checkpoints (export, generate, evaluate, ODE-pair teachers) goes through
`forcing.checkpoints.read_checkpoint_dict` too, re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from forcing.checkpoints import OPTIMIZER_KEY, consolidate, is_sharded, read_checkpoint_dict

__all__ = ["OPTIMIZER_KEY", "DistributedCheckpointIO", "consolidate", "read_checkpoint_dict"]


class DistributedCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO that also loads DCP directories (consolidated in memory)."""

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        """A DCP directory consolidated (`consolidate`), else Lightning's `torch.load`."""
        if is_sharded(Path(path)):
            return consolidate(Path(path))
        if map_location is None:
            return super().load_checkpoint(path, weights_only=weights_only)
        return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
