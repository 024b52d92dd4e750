"""The GPU check's streaming stage: few-step AR streams with a rolling KV cache, denoise only and end to
end (Wan VAE decode of every finished block), at the training horizon and at a multiple of it.

One row per (generator, length): FPS denoise-only and end to end (video frames / s, the papers' FPS),
first-chunk latency of both, peak allocated memory. Rows are written as soon as measured
(:class:`~forcing.bench.stages.StageRecord`); a long row that would not end before the deadline is
shortened (a smaller multiple, at least 2) or skipped.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from forcing.bench.probes import peak_memory
from forcing.bench.stages import Budget, StageRecord
from forcing.bench.streaming import GenSpec, generator_specs, random_inputs, stream_once
from forcing.bench.worlds import BenchWorld

__all__ = ["StreamSetup", "measure_stream", "streaming_stage", "video_frames"]


@dataclass
class StreamSetup:
    """What every stream of the stage shares: backbone, VAE codec, world, device and dtype."""

    model: torch.nn.Module
    codec: Any  # forcing.encoders.WanVAECodec
    world: BenchWorld
    device: torch.device
    dtype: torch.dtype
    repeats: int = 1

    def decoder(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """A fresh streaming decoder (one video): carries the VAE's causal cache across blocks."""
        from forcing.encoders.wan_vae_stream import WanStreamDecoder

        return WanStreamDecoder(self.codec)


def video_frames(latent_frames: int, temporal_stride: int) -> int:
    """Pixel frames of `latent_frames` latent frames (Wan VAE: 1 + 4 (F - 1); 21 -> 81)."""
    return 1 + temporal_stride * (latent_frames - 1)


def _streams(setup: StreamSetup, spec: GenSpec, frames: int, decode: bool) -> tuple[float, float, int | None]:
    """(median first-chunk latency, median total, peak bytes) of `repeats` streams with a rolling cache."""
    noise, cond = random_inputs(setup.model, setup.world, frames, setup.device, setup.dtype)
    runs = []
    with peak_memory(setup.device) as peak, torch.inference_mode():
        for _ in range(setup.repeats):
            decode_fn = setup.decoder() if decode else None
            runs.append(stream_once(setup.model, spec, noise, cond, decode_fn, setup.world.horizon))
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), peak.bytes


def measure_stream(setup: StreamSetup, spec: GenSpec, multiple: int) -> dict[str, Any]:
    """One row: a stream of `multiple` x the horizon, denoise only then end to end (rolling cache of
    one horizon)."""
    frames = multiple * setup.world.horizon
    video = video_frames(frames, setup.codec.temporal_stride)
    first, total, peak = _streams(setup, spec, frames, decode=False)
    first_e2e, total_e2e, peak_e2e = _streams(setup, spec, frames, decode=True)
    return {
        "generator": spec.name,
        "frames_per_block": spec.frames_per_block,
        "steps": len(spec.timesteps),
        "multiple": multiple,
        "latent_frames": frames,
        "video_frames": video,
        "cache_frames": setup.world.horizon,
        "repeats": setup.repeats,
        "fps_denoise": video / total,
        "fps_end_to_end": video / total_e2e,
        "latent_fps_denoise": frames / total,
        "first_chunk_s": first,
        "first_chunk_s_end_to_end": first_e2e,
        "total_s_denoise": total,
        "total_s_end_to_end": total_e2e,
        "peak_mem_bytes": peak_e2e,
        "peak_mem_bytes_denoise": peak,
    }


def _warm_up(setup: StreamSetup, spec: GenSpec) -> None:
    """Two blocks end to end, untimed (kernel selection, allocator growth)."""
    noise, cond = random_inputs(setup.model, setup.world, 2 * spec.frames_per_block, setup.device, setup.dtype)
    with torch.inference_mode():
        stream_once(setup.model, spec, noise, cond, setup.decoder(), setup.world.horizon)


def streaming_stage(setup: StreamSetup, record: StageRecord, budget: Budget, long_multiple: int) -> None:
    """Chunk-wise and frame-wise 4-step streams at 1x the horizon, then at `long_multiple` x (shortened
    to fit the budget, estimated from the 1x row); rows go to `record` as they are measured."""
    specs = generator_specs(many_steps=2)[:2]  # the few-step chunk-wise and frame-wise generators
    per_horizon: dict[str, float] = {}
    for spec in specs:
        if budget.remaining() <= 0:
            record.skip(f"{spec.name} 1x: out of time")
            continue
        _warm_up(setup, spec)
        row = measure_stream(setup, spec, 1)
        per_horizon[spec.name] = row["total_s_denoise"] + row["total_s_end_to_end"]
        record.add(row)
    if long_multiple < 2:
        return
    for spec in specs:
        cost = per_horizon.get(spec.name)
        multiple = long_multiple if cost is None else min(long_multiple, int(budget.remaining() / (1.1 * cost * setup.repeats)))
        if cost is None or multiple < 2:
            record.skip(f"{spec.name} {long_multiple}x: out of time")
            continue
        if multiple < long_multiple:
            record.skip(f"{spec.name} {long_multiple}x: shortened to {multiple}x to fit the time budget")
        record.add(measure_stream(setup, spec, multiple))
