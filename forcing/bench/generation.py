"""Section `generation`: streaming throughput and first-block latency of few- and many-step AR generators."""

from __future__ import annotations

import argparse

import torch

from forcing.bench.markdown import md_row
from forcing.bench.registry import section
from forcing.bench.streaming import GenSpec, generator_specs, random_inputs, time_stream
from forcing.bench.timing import machine
from forcing.bench.worlds import WAN_VIDEO_FRAMES, WAN_WORLD, bench_world

__all__ = ["GEN_HEADER", "bench_generation"]

GEN_HEADER = (
    "| generator | device | dtype | forwards / block (steps + cache write) | decode | latent frames (blocks) "
    "| first-block latency (ms) | total (ms) | total, best run (ms) | latent frames / s |\n"
    "|---|---|---|---|---|---:|---:|---:|---:|---:|"
)


def _row(
    spec: GenSpec,
    device: torch.device,
    dtype: str,
    decode: str,
    frames: int,
    times: tuple[float, float, float],
    fps: str,
) -> str:
    """One table row: (first-block latency, median total, best total) seconds of a stream of `frames`."""
    first, total, best = times
    blocks = frames // spec.frames_per_block
    return md_row(spec.name, device.type, dtype, spec.forwards, decode, f"{frames} ({blocks})",
                  f"{first * 1e3:.1f}", f"{total * 1e3:.1f}", f"{best * 1e3:.1f}", fps)


@section("generation")
def bench_generation(args: argparse.Namespace) -> str:
    """Streaming throughput and first-block latency of few-step and many-step AR generators (random weights)."""
    from forcing.encoders import build_codec

    device, world = torch.device(args.device), bench_world(args)
    model = world.model(device)
    codec = build_codec(kind="identity")
    rows = []
    for spec in generator_specs(args.many_steps):
        noise, cond = random_inputs(model, world, world.horizon, device, torch.float32)
        for decode in (None, lambda block: codec.decode(block).clamp(-1, 1)):
            with torch.inference_mode():
                times = time_stream(model, spec, noise, cond, decode, args.gen_repeats)
            label = "yes (identity codec)" if decode else "no"
            rows.append(
                _row(spec, device, "fp32", label, world.horizon, times, f"{world.horizon / times[1]:.1f}")
            )
    lines = [
        f"### generation: `{world.preset}` preset, random weights and random text context, batch 1, "
        f"{world.horizon} latent frames of {world.height}x{world.width} (the training length), full KV cache; "
        f"median of {args.gen_repeats} streams after 1 warm-up; frames / s = latent frames / median total",
        "",
        machine(device),
        "",
        GEN_HEADER,
        *rows,
    ]
    if device.type == "cuda":
        lines += ["", *_wan_generation(args, device)]
    else:
        lines += [
            "",
            "(Wan2.1-1.3B-size rows need CUDA: `python -m forcing.bench generation --device cuda`.)",
        ]
    return "\n".join(lines)


def _wan_generation(args: argparse.Namespace, device: torch.device) -> list[str]:
    """Wan2.1-1.3B size, bf16, random weights and context, no text encoder and no VAE (decode excluded)."""
    model = WAN_WORLD.model(device, torch.bfloat16)
    noise, cond = random_inputs(model, WAN_WORLD, WAN_WORLD.horizon, device, torch.bfloat16)
    rows = []
    for spec in generator_specs(args.many_steps)[:2]:
        with torch.inference_mode():
            times = time_stream(model, spec, noise, cond, None, args.gen_repeats)
        fps = f"{WAN_WORLD.horizon / times[1]:.2f} (= {WAN_VIDEO_FRAMES / times[1]:.1f} video FPS)"
        rows.append(_row(spec, device, "bf16", "no (no VAE)", WAN_WORLD.horizon, times, fps))
    return [
        f"### generation at Wan2.1-T2V-1.3B size: 832x480 -> {WAN_WORLD.horizon} latent frames of "
        f"{WAN_WORLD.height}x{WAN_WORLD.width} ({model.tokens_per_frame(WAN_WORLD.height, WAN_WORLD.width)} "
        f"tokens/frame), bf16 parameters, random weights, random {WAN_WORLD.text_len}-token context, batch 1, "
        f"full KV cache; no text encoder, no VAE (video FPS = {WAN_VIDEO_FRAMES} frames / latent generation "
        "time, decode NOT included)",
        "",
        machine(device),
        "",
        GEN_HEADER,
        *rows,
    ]
