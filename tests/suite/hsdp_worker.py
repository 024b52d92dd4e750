"""HSDP and deferred gradient sync of `forcing.parallel` on 2 gloo ranks (launched by torchrun).

usage: torchrun --nproc_per_node 2 tests/suite/hsdp_worker.py OUT
Rank r writes OUT.rank<r>.json: whether a deferred micro-batch left the sharded gradients unreduced,
the largest difference between deferred and per-micro-batch sync, and between HSDP and flat FSDP2.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from forcing.parallel import data_parallel_mesh, set_gradient_sync, shard_model  # noqa: E402
from tests.suite.worker_exit import exit_cleanly  # noqa: E402


class Toy(nn.Module):
    """A backbone-shaped toy: `.blocks` of residual MLPs."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8)) for _ in range(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)
        return x


def full_grads(model: nn.Module) -> list[torch.Tensor]:
    """Each parameter's whole gradient (DTensor shards gathered)."""
    return [p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad for p in model.parameters()]


def largest_difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def main() -> None:
    out = sys.argv[1]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh("cpu", (2,), mesh_dim_names=("data_parallel",))
    torch.manual_seed(0)
    base = Toy()
    inputs = [torch.randn(4, 8, generator=torch.Generator().manual_seed(10 * rank + i)) for i in range(2)]

    def run(model: nn.Module, defer: bool, hsdp: bool = False) -> bool:
        """Two micro-batches; returns whether gradients were still unreduced after the first."""
        unreduced = True
        for i, x in enumerate(inputs):
            last = i == len(inputs) - 1
            if defer:
                set_gradient_sync(model, last, hsdp=hsdp)
            model(x).square().mean().backward()
            if i == 0:
                unreduced = all(p.grad is None for p in model.parameters())
        return unreduced

    every = shard_model(copy.deepcopy(base), mesh)
    run(every, defer=False)
    deferred = shard_model(copy.deepcopy(base), mesh)
    deferred_unreduced = run(deferred, defer=True)
    hsdp_mesh = data_parallel_mesh(mesh, replicate=2)
    hsdp = shard_model(copy.deepcopy(base), mesh, replicate=2)
    run(hsdp, defer=True, hsdp=True)
    result = {
        "hsdp_mesh": [list(hsdp_mesh.mesh.shape), list(hsdp_mesh.mesh_dim_names)],
        "param_mesh": list(next(hsdp.parameters()).device_mesh.mesh_dim_names),
        "deferred_unreduced": deferred_unreduced,
        "deferred_vs_every": largest_difference(full_grads(deferred), full_grads(every)),
        "hsdp_vs_flat": largest_difference(full_grads(hsdp), full_grads(every)),
        "grad_norm": float(sum(g.square().sum() for g in full_grads(every)) ** 0.5),
    }
    Path(f"{out}.rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
    exit_cleanly()
