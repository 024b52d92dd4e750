"""The FSDP2 precision policy on 2 gloo ranks (launched by torchrun): dtypes and an lr-2e-6 step.

usage: torchrun --nproc_per_node 2 tests/suite/precision_worker.py OUT
Rank r writes {policy: report} to OUT.rank<r>.json, `self_forcing_dmd` on the tiny backbone
(generator, EMA, frozen real score, critic) under two policies:

- "bf16_policy": what hardware=h100x8 does: Lightning precision 32-true, FSDP2 `param_dtype`
  bfloat16 (`reduce_dtype` float32), frozen networks stored in bfloat16;
- "bf16_true": the old hardware: the same networks built and cast as Lightning's `bf16-true` does
  (bf16 default dtype inside `configure_model`, then the whole module cast to bf16).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from forcing.ema import ema_update, reshard  # noqa: E402
from lightning_modules.self_forcing import SelfForcing  # noqa: E402
from tests.suite.helpers import tiny_config  # noqa: E402
from tests.suite.worker_exit import exit_cleanly  # noqa: E402

LR = 2e-6
POLICIES = {
    "bf16_policy": ("hardware.param_dtype=bfloat16", "hardware.frozen_dtype=bfloat16"),
    "bf16_true": ("hardware.param_dtype=bfloat16",),
}


def local_shards(net: nn.Module) -> list[torch.Tensor]:
    """Copies of this rank's shards of `net`'s parameters (plain tensors without FSDP2)."""
    reshard(net)
    return [(p.to_local() if hasattr(p, "to_local") else p).detach().clone() for p in net.parameters()]


def dtypes(net: nn.Module) -> list[str]:
    """The distinct dtypes of this rank's parameter shards of `net`."""
    return sorted({str(t.dtype) for t in local_shards(net)})


def changed(before: list[torch.Tensor], after: list[torch.Tensor]) -> float:
    """Fraction of the shards' elements that differ."""
    return sum(int((a != b).sum()) for a, b in zip(before, after)) / sum(a.numel() for a in before)


def build(policy: str, mesh: Any) -> SelfForcing:
    """The module, sharded on `mesh` as `configure_model` does under `policy`."""
    from lightning.pytorch.plugins.precision import HalfPrecision

    cfg = tiny_config("self_forcing_dmd", "hardware=cpu_fsdp2", f"optim.lr={LR}", "optim.warmup_steps=1",
                      *POLICIES[policy])
    module = SelfForcing(cfg)
    module._device_mesh = mesh  # what Lightning's ModelParallelStrategy sets before configure_model
    half = HalfPrecision("bf16-true") if policy == "bf16_true" else None
    with half.tensor_init_context() if half else nullcontext():
        module.configure_model()
    if half:
        half.convert_module(module)
    return module


def perturb_(net: nn.Module) -> None:
    """Wan's init zeroes the head (no gradient would reach the blocks): perturb every shard."""
    torch.manual_seed(dist.get_rank())
    with torch.no_grad():
        for shard in (p.to_local() for p in net.parameters()):
            shard.add_(0.02 * torch.randn_like(shard, dtype=torch.float32).to(shard.dtype))


def report(policy: str, mesh: Any) -> dict[str, Any]:
    """Dtypes of every network, the compute dtype and what an lr-2e-6 AdamW step (then an EMA update) changes."""
    module = build(policy, mesh)
    gen, ema = module.generator, module.generator_ema
    perturb_(gen)
    ema_update(ema, gen, decay=0.99, step=0, start_step=1)  # ema <- generator
    out: dict[str, Any] = {
        name: dtypes(getattr(module, name)) for name in ("generator", "generator_ema", "critic_net", "real_score_net")
    }
    out["sharded"] = all(hasattr(p, "to_local") for p in gen.parameters())
    seen: dict[str, str] = {}
    linear = next(m for m in gen.blocks[0].modules() if isinstance(m, nn.Linear))
    linear.register_forward_hook(lambda m, args, _: seen.update(input=str(args[0].dtype), weight=str(m.weight.dtype)))
    torch.manual_seed(0)
    c = gen.config
    x, t = torch.randn(2, c.in_dim, 3, 8, 8), torch.rand(2, 3) * 1000
    context = module.encode_prompts(["a red square", "a blue circle"])
    opt = module.configure_optimizers()[0]  # the generator's AdamW
    before, ema_before = local_shards(gen), local_shards(ema)
    loss = gen(x, t, context, mode="block_causal", frames_per_block=3).float().square().mean()
    loss.backward()
    opt.step()
    after = local_shards(gen)
    ema_update(ema, gen, decay=0.99, step=1, start_step=0)
    out.update(compute=seen, changed=changed(before, after), ema_changed=changed(ema_before, local_shards(ema)),
               grad_dtypes=sorted({str(p.grad.dtype) for p in gen.parameters() if p.grad is not None}))
    return out


def main() -> None:
    from torch.distributed.device_mesh import init_device_mesh

    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),), mesh_dim_names=("data_parallel",))
    reports = {policy: report(policy, mesh) for policy in POLICIES}
    Path(f"{sys.argv[1]}.rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(reports))


if __name__ == "__main__":
    main()
    exit_cleanly()
