"""Section `official`: our streaming generator side by side with the official Self Forcing code on CPU.

``python -m forcing.bench official --official PATH`` (PATH: a local clone of
github.com/guandeh17/Self-Forcing; nothing of it is copied here, see :mod:`.official_code`). One
random-weight backbone of the `--preset` architecture is loaded into our `CausalWanModel` and, under
the original Wan names, into their `CausalWanModel`; both stream the same noise and text embeddings,
with the few-step grid, frames per block and clean-context timestep of their
`configs/self_forcing_dmd.yaml`, once with a KV cache of the whole video and once with a rolling
window (`--official-window` frames; their `local_attn_size`). Reported: first-block latency and
frames / s of both and their ratios, and the largest difference of the two outputs, from a run in
which their re-noising uses our sampler's draws (:func:`.official_runs.our_renoising_draws`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from forcing.bench.markdown import md_row
from forcing.bench.official_code import OfficialCode, load_official, official_state_dict
from forcing.bench.official_runs import (
    IdentityVAE,
    PromptEmbeddings,
    our_renoising_draws,
    run_theirs,
    time_theirs_once,
)
from forcing.bench.registry import section
from forcing.bench.streaming import GenSpec, median_times, random_inputs, stream_once
from forcing.bench.timing import machine
from forcing.bench.worlds import bench_world

__all__ = ["OfficialPair", "bench_official", "build_pair", "compare_outputs"]

HEADER = (
    "| KV cache | latent frames (blocks) | first-block latency, ours (ms) | theirs (ms) | speed-up (theirs / ours) "
    "| frames / s, ours | theirs | ratio (ours / theirs) | max abs diff | same, their fp32 grid |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


@dataclass
class OfficialPair:
    """Our model and their pipeline holding the same weights, and the stream they both run."""

    model: Any  # our CausalWanModel
    pipe: Any  # their CausalInferencePipeline
    noise: Tensor  # [1, C, F, H, W]
    cond: Any  # Conditioning with the random text embeddings both receive
    spec: GenSpec
    cache_frames: int
    context_t: float


def _perturb(model: torch.nn.Module, seed: int, std: float = 0.02) -> None:
    """Add N(0, std) to every parameter (Wan's init zeroes biases and sets norms to one: a bias or
    norm-weight mistake would not show)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * std)


def our_timesteps(config: Any) -> tuple[float, ...]:
    """Our few-step grid for their config: `denoising_step_list`, warped through the shift when
    `warp_denoising_step` (their pipeline looks it up in the shifted 1000-step scheduler grid)."""
    from forcing.diffusion import few_step_timesteps

    steps = [float(s) for s in config.denoising_step_list]
    if not config.warp_denoising_step:
        return tuple(steps)
    shift = float(config.get("model_kwargs", {}).get("timestep_shift", 8.0))  # WanDiffusionWrapper's default
    return tuple(float(t) for t in few_step_timesteps(steps, shift=shift))


def build_pair(
    code: OfficialCode, args: argparse.Namespace, window: int | None, seed: int = 0
) -> OfficialPair:
    """Our random-weight model, theirs with the same weights, their pipeline, and the shared inputs."""
    world, config = bench_world(args), code.config
    torch.manual_seed(seed)
    model = world.model(torch.device("cpu"))
    _perturb(model, seed)
    frames = args.official_frames
    noise, cond = random_inputs(model, world, frames, torch.device("cpu"), torch.float32)
    theirs = code.build_model(model.config, world.text_len, -1 if window is None else window)
    theirs.load_state_dict(official_state_dict(model.state_dict()), strict=True)
    tpf = model.tokens_per_frame(world.height, world.width)
    pipe = code.build_pipeline(theirs.eval(), tpf, frames, PromptEmbeddings(cond.context), IdentityVAE())
    fpb = int(config.num_frame_per_block)
    spec = GenSpec(f"few-step chunk-wise ({fpb} frames/block)", fpb, our_timesteps(config), True)
    return OfficialPair(model, pipe, noise, cond, spec, window or frames, float(config.context_noise))


def compare_outputs(pair: OfficialPair, seed: int = 0, their_grid: bool = False) -> float:
    """Max |ours - theirs| of one stream each with the same draws (their grid: `pipe.denoising_step_list`)."""
    from forcing.rollout import generate

    timesteps = [float(t) for t in pair.pipe.denoising_step_list] if their_grid else pair.spec.timesteps
    ours = generate(
        pair.model,
        pair.noise,
        pair.cond,
        frames_per_block=pair.spec.frames_per_block,
        timesteps=timesteps,
        stochastic=True,
        cache_frames=pair.cache_frames,
        context_t=pair.context_t,
        generator=torch.Generator().manual_seed(seed),
    )
    with our_renoising_draws(pair.pipe, torch.Generator().manual_seed(seed)):
        theirs = run_theirs(pair.pipe, pair.noise)
    return float((ours - theirs).abs().max())


def _row(pair: OfficialPair, repeats: int) -> str:
    if pair.context_t != 0.0:
        raise ValueError(
            f"their context_noise is {pair.context_t}; the timed streams write the context at t = 0"
        )
    frames, fpb = pair.noise.shape[2], pair.spec.frames_per_block
    with torch.no_grad():
        ours = median_times(
            lambda: stream_once(pair.model, pair.spec, pair.noise, pair.cond, None, pair.cache_frames),
            repeats,
        )
        theirs = median_times(
            lambda: time_theirs_once(pair.pipe, pair.noise, len(pair.spec.timesteps) + 1), repeats
        )
    diff, diff_grid = compare_outputs(pair), compare_outputs(pair, their_grid=True)
    cache = "whole video" if pair.cache_frames == frames else f"rolling, {pair.cache_frames} frames"
    return md_row(
        cache, f"{frames} ({frames // fpb})", f"{ours[0] * 1e3:.1f}", f"{theirs[0] * 1e3:.1f}",
        f"{theirs[0] / ours[0]:.2f}x", f"{frames / ours[1]:.1f}", f"{frames / theirs[1]:.1f}",
        f"{theirs[1] / ours[1]:.2f}x", f"{diff:.2e}", f"{diff_grid:.2e}",
    )


@section("official")
def bench_official(args: argparse.Namespace) -> str:
    """Ours vs the official Self Forcing pipeline (`--official PATH`): latency, frames / s, output difference."""
    if getattr(args, "official", None) is None:
        return "### official: skipped (pass `--official PATH`, a local clone of guandeh17/Self-Forcing)"
    if torch.device(args.device).type != "cpu":
        return "### official: skipped (CPU only: on CUDA their attention runs flash-attn in bf16)"
    code = load_official(args.official)
    world = bench_world(args)
    windows = [None] + ([args.official_window] if args.official_window < args.official_frames else [])
    rows = [_row(build_pair(code, args, window), args.gen_repeats) for window in windows]
    grid = ", ".join(f"{t:g}" for t in our_timesteps(code.config))
    return "\n".join(
        [
            f"### official: ours vs Self Forcing ({code.root}) on the `{world.preset}` architecture, random weights, "
            f"{world.height}x{world.width} latents, {world.text_len} text tokens, batch 1, fp32, no grad; "
            f"timesteps [{grid}], context at t = {code.config.context_noise}; median of {args.gen_repeats} streams "
            "after 1 warm-up; frames / s = latent frames / median total",
            "",
            machine(torch.device("cpu")),
            "",
            HEADER,
            *rows,
        ]
    )
