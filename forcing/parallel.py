"""FSDP2 for the backbone, usable with or without Lightning.

`fully_shard` each transformer block, then the root (so single blocks really are the unit of
all-gather, unlike size-based wrapping), with activation checkpointing applied per block first.
Frozen networks are sharded the same way and simply get no optimiser.

Precision: the trainable networks keep fp32 parameters (the sharded master weights, hence fp32
AdamW state and EMA) and FSDP2 all-gathers them in `param_dtype` for compute
(`MixedPrecisionPolicy`), reducing gradients in `reduce_dtype`; frozen networks are stored in
`frozen_dtype` (`cast_frozen`), since a frozen weight never needs more than its compute precision.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def to_dtype(name: str | torch.dtype) -> torch.dtype:
    """`"bfloat16"` -> `torch.bfloat16` (config strings to dtypes)."""
    if isinstance(name, torch.dtype):
        return name
    if name not in _DTYPES:
        raise ValueError(f"unknown dtype {name!r}: one of {sorted(_DTYPES)}")
    return _DTYPES[name]


def cast_frozen(module: nn.Module, dtype: str | torch.dtype) -> nn.Module:
    """Store a frozen network's floating-point parameters in `dtype` (in place; buffers such as
    normalisation and positional tables keep theirs)."""
    dtype = to_dtype(dtype)
    params = list(module.parameters())
    if any(p.requires_grad for p in params):
        raise ValueError(f"cast_frozen: {type(module).__name__} has trainable parameters")
    for param in params:
        if param.is_floating_point():
            param.data = param.data.to(dtype)
    return module


_HSDP_MESHES: dict[tuple[str, int, int], Any] = {}


def data_parallel_mesh(mesh: Any, replicate: int | None = None) -> Any:
    """The data-parallel sub-mesh of Lightning's ModelParallelStrategy mesh (or the mesh itself).

    `replicate` > 1 turns it into an HSDP mesh ("replicate", "shard") of shape
    (replicate, ranks / replicate): `fully_shard` then shards within a group of consecutive ranks (a
    node when replicate = num_nodes) and all-reduces gradients across the groups. Built once per shape.
    """
    if mesh is None:
        return None
    names = getattr(mesh, "mesh_dim_names", None) or ()
    flat = mesh["data_parallel"] if "data_parallel" in names else mesh
    if not replicate or replicate <= 1:
        return flat
    ranks = flat.size()
    if ranks % replicate:
        raise ValueError(f"hardware.replicate={replicate} must divide the {ranks} data-parallel ranks")
    key = (flat.device_type, replicate, ranks // replicate)
    if key not in _HSDP_MESHES:
        from torch.distributed.device_mesh import init_device_mesh

        _HSDP_MESHES[key] = init_device_mesh(
            flat.device_type, (replicate, ranks // replicate), mesh_dim_names=("replicate", "shard")
        )
    return _HSDP_MESHES[key]


def set_gradient_sync(module: nn.Module, sync: bool, hsdp: bool = False) -> None:
    """Deferred gradient sync for gradient accumulation: on every FSDP2 unit under `module`, reduce
    gradients only when `sync` (the last micro-batch of an iteration). Under HSDP only the all-reduce
    across replicas is deferred (gradients are still reduce-scattered within a shard group, so they
    stay sharded); under plain FSDP2 the reduce-scatter is deferred and unsharded gradients accumulate.
    """
    from torch.distributed.fsdp import FSDPModule

    for unit in module.modules():
        if isinstance(unit, FSDPModule):
            if hsdp:
                unit.set_requires_all_reduce(sync, recurse=False)
            else:
                unit.set_requires_gradient_sync(sync, recurse=False)


def shard_model(
    model: nn.Module,
    mesh: Any = None,
    param_dtype: str | torch.dtype = "float32",
    reduce_dtype: str | torch.dtype = "float32",
    activation_checkpointing: bool = False,
    replicate: int | None = None,
    checkpoint_every: int = 1,
) -> nn.Module:
    """Checkpoint and shard `model` (a backbone with `.blocks`) per block, then at the root
    (HSDP across `replicate` groups when > 1, see `data_parallel_mesh`); activation checkpointing
    recomputes every `checkpoint_every`-th block in backward.

    With `mesh=None` only activation checkpointing is applied (single process).
    """
    if activation_checkpointing:
        model.enable_gradient_checkpointing(every=checkpoint_every)
    mesh = data_parallel_mesh(mesh, replicate)
    if mesh is None:
        return model
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    # Blocks cast their own inputs; casting the fp32 residual stream, modulation and RoPE at every
    # block input would defeat the fp32 islands.
    policy = MixedPrecisionPolicy(
        param_dtype=to_dtype(param_dtype), reduce_dtype=to_dtype(reduce_dtype), cast_forward_inputs=False
    )
    for block in model.blocks:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    return model


def shard_module(
    module: nn.Module, mesh: Any, param_dtype: str | torch.dtype = "float32", reduce_dtype: str | torch.dtype = "float32",
    replicate: int | None = None,
) -> nn.Module:
    """`fully_shard` a small module as one unit (e.g. GAN heads), so its gradients are reduced."""
    mesh = data_parallel_mesh(mesh, replicate)
    if mesh is None:
        return module
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=to_dtype(param_dtype), reduce_dtype=to_dtype(reduce_dtype))
    fully_shard(module, mesh=mesh, mp_policy=policy)
    return module
