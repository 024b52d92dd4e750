"""Section `memory`: rolling-window streams of growing length keep cache bytes and per-block memory flat."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import torch

from forcing.bench.probes import CacheProbe, stream_alloc
from forcing.bench.registry import section
from forcing.bench.streaming import generator_specs, random_inputs, run_stream
from forcing.bench.timing import machine
from forcing.bench.worlds import bench_world

__all__ = ["bench_memory"]


@section("memory")
def bench_memory(args: argparse.Namespace) -> str:
    """Rolling-window streams of 1x..20x the training length: cache bytes and per-block memory stay flat."""
    device, world = torch.device(args.device), bench_world(args)
    model = world.model(device)
    spec = generator_specs(args.many_steps)[0]
    rows = []
    for multiple in args.multiples:
        frames = multiple * world.horizon
        noise, cond = random_inputs(model, world, frames, device, torch.float32)
        probe = CacheProbe(model)

        def run(on_block: Callable, noise: torch.Tensor = noise, cond: Any = cond) -> None:
            with torch.inference_mode():
                run_stream(model, spec, noise, cond, world.horizon, on_block)

        peak, block_peak = stream_alloc(run, device)
        probe.close()
        out = 2 * noise.nbytes  # finished blocks + their concatenation: the returned video itself
        rows.append(
            f"| {multiple}x | {frames} | {world.horizon} | {probe.capacity_frames} | {_mib(probe.peak_bytes)} "
            f"| {_mib(block_peak)} | {_mib(out)} | {_mib(peak)} |"
        )
    how = "torch.cuda allocator statistics" if device.type == "cuda" else "torch profiler allocation events"
    return "\n".join(
        [
            f"### memory: `{world.preset}` preset, {spec.name}, 4 steps + 1 cache write per block, fp32, batch 1, "
            f"rolling KV window of {world.horizon} frames (the training length), no decode",
            "",
            f"{machine(device)}; allocations above the input noise, measured with {how}. Per-block peak: the "
            "largest rise of allocated memory within one block (activations + the block's latents). Peak: the "
            "whole stream, which also holds the output latents (finished blocks + their concatenation, 2 x F "
            "frames) that `generate` returns: only they grow with the video.",
            "",
            "| length | latent frames | window | cache capacity (frames) | KV cache (MiB) | per-block peak (MiB) "
            "| output latents (MiB) | peak alloc (MiB) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f}"
