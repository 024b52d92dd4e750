"""Where a network's weights come from, and a content hash of what they are.

A builder records the source of the weights it loads on the module (`set_weights_source`: a
weights folder, a codec file, or how a code-built network was made); `weights_sha256` hashes what
the network computes with: every parameter and buffer (non-persistent buffers too, e.g. the toy
text encoder's seeded tables), with its name, dtype and shape. Training checkpoints reference frozen
networks by these two values instead of storing their weights.

Cost: sha256 reads every byte once, about 1-2 GB/s on one CPU core, so hashing is free for the
shapes world and takes tens of seconds for Wan-scale frozen networks (UMT5-XXL ~11 GB, a Wan-14B
real score ~28 GB in bf16), once per run start, on every rank in parallel.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

#: the module attribute holding the source of its weights
SOURCE_ATTRIBUTE = "weights_source"
#: the source of randomly initialised weights (no file to rebuild them from)
RANDOM_INIT = "random init"


def set_weights_source(module: nn.Module, source: str) -> nn.Module:
    """Record on `module` where its weights come from; returns `module`."""
    setattr(module, SOURCE_ATTRIBUTE, str(source))
    return module


def weights_source(module: nn.Module) -> str:
    """The recorded source of `module`'s weights (`set_weights_source`), else a description of its class."""
    return getattr(module, SOURCE_ATTRIBUTE, None) or f"{type(module).__name__} built in code"


def is_random_init(source: str) -> bool:
    """Whether `source` names random initialisation (weights that no file can rebuild)."""
    return source.startswith(RANDOM_INIT)


@torch.no_grad()
def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes (a shipped weights file, as `sha256sum` prints it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(module: nn.Module) -> str:
    """sha256 (hex) over `module`'s parameters and buffers, sorted by name: each name, dtype, shape and bytes.

    Full (unsharded) tensors only: hash a network before `fully_shard`.
    """
    digest = hashlib.sha256()
    tensors = {**dict(module.named_buffers()), **dict(module.named_parameters())}
    for name in sorted(tensors):
        tensor = tensors[name].detach()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        data = tensor.cpu().contiguous().reshape(-1).view(torch.uint8)
        digest.update(memoryview(data.numpy()))
    return digest.hexdigest()
