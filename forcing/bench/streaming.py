"""AR generator configurations and timed streams of them on random inputs (generation and memory sections)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from forcing.bench.timing import sync
from forcing.bench.worlds import BenchWorld
from forcing.rollout.spec import SamplerSpec

__all__ = [
    "GenSpec",
    "generator_specs",
    "median_times",
    "random_inputs",
    "run_stream",
    "stream_once",
    "time_stream",
]


GenSpec = SamplerSpec  # the benchmark's name for a paradigm's sampler (one definition)


def generator_specs(many_steps: int) -> list[GenSpec]:
    """Few-step chunk-wise and frame-wise (Self Forcing: 4 steps) and many-step CFG (TF/DF) samplers."""
    from forcing.diffusion import euler_timesteps, few_step_timesteps

    few = tuple(float(t) for t in few_step_timesteps())
    many = tuple(float(t) for t in euler_timesteps(many_steps)[:-1])
    return [
        GenSpec("few-step chunk-wise (3 frames/block)", 3, few, True),
        GenSpec("few-step frame-wise (1 frame/block)", 1, few, True),
        GenSpec(f"{many_steps}-step Euler chunk-wise, CFG w=4", 3, many, False, 4.0),
    ]


def random_inputs(
    model: torch.nn.Module, world: BenchWorld, frames: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, Any]:
    """Noise [1, C, frames, H, W] and a random text context (no text encoder) with a null context."""
    from forcing.diffusion import Conditioning

    cfg = model.config
    noise = torch.randn(1, cfg.in_dim, frames, world.height, world.width, device=device, dtype=dtype)
    context = torch.randn(1, world.text_len, cfg.text_dim, device=device, dtype=dtype)
    return noise, Conditioning(context=context, null_context=torch.zeros_like(context))


def run_stream(
    model: torch.nn.Module,
    spec: GenSpec,
    noise: torch.Tensor,
    cond: Any,
    cache_frames: int | None,
    on_block: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """One AR stream of `spec` over `noise` (KV cache of `cache_frames`, None: full); the generated latents."""
    from forcing.rollout import generate

    return generate(
        model,
        noise,
        cond,
        **spec.stream_kwargs(),
        cache_frames=cache_frames,
        on_block=on_block,
    )


def stream_once(
    model: torch.nn.Module,
    spec: GenSpec,
    noise: torch.Tensor,
    cond: Any,
    decode: Callable[[torch.Tensor], object] | None = None,
    cache_frames: int | None = None,
) -> tuple[float, float]:
    """(first-block latency, total) seconds of one AR stream; `decode` runs on every finished block."""
    device = noise.device
    first: list[float] = []

    def on_block(index: int, block: torch.Tensor) -> None:
        if decode is not None:
            decode(block)
        if index == 0:
            sync(device)
            first.append(time.perf_counter() - start)

    sync(device)
    start = time.perf_counter()
    run_stream(model, spec, noise, cond, cache_frames, on_block)
    sync(device)
    return first[0], time.perf_counter() - start


def median_times(stream: Callable[[], tuple[float, float]], repeats: int) -> tuple[float, float, float]:
    """Median first-block latency, median and min total seconds of `repeats` calls of `stream` (each
    returning (first-block latency, total) seconds) after one warm-up call."""
    stream()
    runs = [stream() for _ in range(repeats)]
    totals = [r[1] for r in runs]
    return statistics.median(r[0] for r in runs), statistics.median(totals), min(totals)


def time_stream(
    model: torch.nn.Module, spec: GenSpec, noise: torch.Tensor, cond: Any, decode: Any, repeats: int
) -> tuple[float, float, float]:
    """Median first-block latency, median and min total seconds of `repeats` streams after one warm-up."""
    return median_times(lambda: stream_once(model, spec, noise, cond, decode), repeats)
