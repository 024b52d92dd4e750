"""Read a training checkpoint of the suite, file or distributed (DCP) directory, as the dictionary one
process loads: the one reader of checkpoints (`lightning_modules.checkpoint_io` resumes with it, the
loaders of `lightning_modules.loading` and `forcing.ode_pairs.load_teacher` read with it).

A checkpoint is a `torch.save` file (one process) or a DCP directory (FSDP2 on more than one rank: one
shard file per rank, DCP's `.metadata` index and Lightning's `meta.pt` with everything that is not a
tensor). A DCP directory is consolidated (`consolidate`, with
`torch.distributed.checkpoint.format_utils.dcp_to_torch_save`): the whole checkpoint in memory, written
once to a temporary file (in `$TMPDIR`); fine for the runs one process trains, at Wan scale resume on
FSDP2 instead.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["OPTIMIZER_KEY", "consolidate", "is_dcp_checkpoint", "is_sharded", "read_checkpoint_dict"]

#: DCP keys of the optimiser states (Lightning's ModelParallelStrategy writes optimizer_0, optimizer_1, ...)
OPTIMIZER_KEY = re.compile(r"^optimizer_(\d+)$")
#: DCP's index file, written last, after every shard
DCP_INDEX = ".metadata"


def is_sharded(path: Path) -> bool:
    """Whether the checkpoint `path` is a DCP directory (complete or not)."""
    return path.is_dir()


def is_dcp_checkpoint(path: Path) -> bool:
    """Whether `path` is a DCP checkpoint directory with its index (a weights folder is not)."""
    return (path / DCP_INDEX).is_file()


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
    path = Path(path)
    if is_sharded(path):
        return consolidate(path)
    return torch.load(path, map_location=map_location, weights_only=False)
