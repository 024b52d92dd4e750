"""Read a checkpoint, file or distributed (DCP) directory, as the dictionary one process loads.

FSDP2 on several ranks resumes a DCP directory itself, on any number of ranks (DCP reshards on load).
One process without FSDP2 (`hardware.strategy=auto`) cannot: Lightning's single-device strategy
`torch.load`s the path. `DistributedCheckpointIO`, the checkpoint plugin of such runs, consolidates a
DCP directory first (`consolidate`, with `torch.distributed.checkpoint.format_utils.dcp_to_torch_save`):
a 2-rank checkpoint resumes in one process. `lightning_modules.loading` (export, generate, evaluate)
reads checkpoints through `read_checkpoint_dict` too.

Consolidation holds the whole checkpoint in memory and writes it once to a temporary file (in
`$TMPDIR`): fine for the runs one process trains; at Wan scale resume on FSDP2 instead.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lightning_modules.checkpoint_files import is_sharded

#: DCP keys of the optimiser states (Lightning's ModelParallelStrategy writes optimizer_0, optimizer_1, ...)
OPTIMIZER_KEY = re.compile(r"^optimizer_(\d+)$")


def consolidate(folder: Path) -> dict[str, Any]:
    """The Lightning checkpoint dict of the DCP directory `folder`: its `meta.pt` (loops, RNG, config,
    callbacks, ...) with `state_dict` (full tensors) and `optimizer_states` (a list in optimiser order;
    states keyed by parameter name, which `torch.optim.Optimizer.load_state_dict` maps by position)."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with tempfile.TemporaryDirectory(prefix="forcing-consolidate-") as tmp:
        full = Path(tmp) / "checkpoint.pt"
        dcp_to_torch_save(folder, full)
        tensors = torch.load(full, map_location="cpu", weights_only=False)
    checkpoint = torch.load(folder / "meta.pt", map_location="cpu", weights_only=False)
    checkpoint["state_dict"] = tensors.pop("state_dict")
    optimizers = sorted((int(m.group(1)), key) for key in tensors if (m := OPTIMIZER_KEY.match(key)))
    checkpoint["optimizer_states"] = [tensors.pop(key) for _, key in optimizers]
    return checkpoint


def read_checkpoint_dict(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The checkpoint dict of a checkpoint file or DCP directory (trusted files only: unpickled with
    `weights_only=False`, Lightning stores loop and callback state)."""
    if is_sharded(path):
        return consolidate(path)
    return torch.load(path, map_location=map_location, weights_only=False)


class DistributedCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO that also loads DCP directories (consolidated in memory)."""

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        """A DCP directory consolidated (`consolidate`), else Lightning's `torch.load`."""
        if is_sharded(Path(path)):
            return consolidate(Path(path))
        if map_location is None:
            return super().load_checkpoint(path, weights_only=weights_only)
        return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
