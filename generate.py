"""Streaming generation from any paradigm's checkpoint: `python generate.py --ckpt RUN_OR_CKPT ...`.

    python generate.py --ckpt runs/teacher_forcing-fm-s0 --prompt "a red circle moves left" --frames 240
    python generate.py --ckpt last.ckpt --prompts-file prompts.txt --frames 120 --window 12 --sink 3
    python generate.py --ckpt ... --prompt "..." --frames 48 --no-decode --device cuda --dtype bfloat16

Causal paradigms stream block by block with a rolling KV cache (Self Forcing Algorithm 2, via
`ForcingModule.stream`) for any number of frames; each uses its own sampler (`sampler_settings`:
few-step or many-step Euler with CFG). The bidirectional teacher cannot stream: it samples its
whole clip at once with `module.sample` (reported as `streaming: false`). Weights: the EMA copy
when the checkpoint has one. Per prompt: `<out>/<NN>_<slug>.safetensors` (latents [C, F, H, W]),
`<out>/<NN>_<slug>.mp4` (unless --no-decode), one JSON line and one human line on stdout (also
appended to `<out>/report.jsonl`). Prompts are generated one at a time (batch 1), prompt i with
seed `--seed + i`; first-block latency is the time to the first finished latent block (text
encoding and cache allocation included, decode not), after `--warmup` untimed one-block runs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from forcing.errors import ConfigError
from forcing.models.cache_probe import CacheProbe

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python generate.py", description=__doc__.splitlines()[0])
    p.add_argument(
        "--ckpt", required=True, help="a .ckpt file or a run directory (uses checkpoints/last.ckpt)"
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", action="append", help="a prompt (repeat for several)")
    src.add_argument(
        "--prompts-file", type=Path, help="one prompt per line ('#' lines and blank lines skipped)"
    )
    p.add_argument(
        "--frames", type=int, required=True, help="latent frames to generate (any multiple of the block)"
    )
    p.add_argument(
        "--window",
        type=int,
        default=None,
        help="KV window in frames (default: paradigm.local_window, else the training horizon)",
    )
    p.add_argument("--sink", type=int, default=0, help="sink frames kept in the cache for ever")
    p.add_argument("--seed", type=int, default=0, help="noise seed of the first prompt (prompt i: seed + i)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: <run>/generated)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="generator parameter dtype")
    p.add_argument("--no-decode", action="store_true", help="latents only: no decoding, no mp4")
    p.add_argument("--fps", type=int, default=None, help="mp4 frame rate (default: the run's sample_fps)")
    p.add_argument("--warmup", type=int, default=1, help="untimed one-block generations before timing")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    return p.parse_args(argv)


def read_prompts(args: argparse.Namespace) -> list[str]:
    """Prompts from --prompt or --prompts-file."""
    if args.prompt:
        return list(args.prompt)
    if not args.prompts_file.is_file():
        raise ConfigError(f"prompts file {args.prompts_file} does not exist")
    lines = [line.strip() for line in args.prompts_file.read_text().splitlines()]
    prompts = [line for line in lines if line and not line.startswith("#")]
    if not prompts:
        raise ConfigError(f"prompts file {args.prompts_file} holds no prompt")
    return prompts


def slug(text: str, width: int = 40) -> str:
    """A file-name-safe prefix of a prompt."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:width] or "prompt"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sampler_report(module: Any, streaming: bool) -> dict[str, Any]:
    """Steps per block, CFG and block size of the paradigm's sampler."""
    if streaming:
        s = module.sampler_settings()
        steps, guidance, fpb = len(s.timesteps), s.guidance_scale, s.frames_per_block
        sampler = "few-step (x0 + re-noise)" if s.stochastic else "Euler ODE"
    else:
        steps, guidance, fpb = int(module.p.sample_steps), float(module.p.guidance_scale), None
        sampler = "Euler ODE, whole clip (bidirectional: cannot stream)"
    return {
        "sampler": sampler,
        "steps_per_block": steps,
        "cache_write_forwards_per_block": 1 if streaming else 0,
        "guidance_scale": guidance,
        "cfg_batch_factor": 2 if guidance != 1.0 else 1,
        "frames_per_block": fpb,
    }


def run_one(
    module: Any, prompt: str, seed: int, args: argparse.Namespace, window: int, streaming: bool
) -> tuple[Tensor, dict]:
    """Generate one prompt's latents [1, C, F, H, W] and time it (first block, total)."""
    device = module.device
    first: list[float] = []
    t0 = 0.0

    def on_block(index: int, block: Tensor) -> None:
        if index == 0:
            _sync(device)
            first.append(time.perf_counter() - t0)

    probe = CacheProbe(module.sampling_generator())
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        _sync(device)
        t0 = time.perf_counter()
        if streaming:
            latents = module.stream(
                [prompt],
                args.frames,
                seed=seed,
                cache_frames=window + args.sink,
                sink_frames=args.sink,
                on_block=on_block,
            )
        else:
            latents = module.sample([prompt], args.frames, seed=seed)
        _sync(device)
        gen_s = time.perf_counter() - t0
    finally:
        probe.close()
    peak_cuda = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return latents, {
        "first_block_latency_s": first[0] if first else gen_s,  # non-streaming: the whole clip comes at once
        "generate_s": gen_s,
        "peak_cache_bytes": probe.peak_bytes,
        "cache_capacity_frames": probe.capacity_frames,
        "peak_cuda_allocated_bytes": peak_cuda,  # weights included; None on CPU
    }


def write_outputs(
    latents: Tensor, video: Tensor | None, stem: Path, meta: dict[str, Any], fps: int
) -> dict[str, str | None]:
    """Latents as safetensors (`latents`: [C, F, H, W], metadata strings) and the decoded mp4."""
    from safetensors.torch import save_file

    from forcing.video import write_mp4

    stem.parent.mkdir(parents=True, exist_ok=True)
    lat_path = stem.with_suffix(".safetensors")
    save_file(
        {"latents": latents[0].float().cpu().contiguous()},
        str(lat_path),
        metadata={k: str(v) for k, v in meta.items()},
    )
    mp4 = None
    if video is not None:
        scale = 4 if max(video.shape[-2:]) < 128 else 1
        mp4 = str(write_mp4(video[0].float().cpu(), stem.with_suffix(".mp4"), fps=fps, scale=scale))
    return {"latents_path": str(lat_path), "video_path": mp4}


def human_line(r: dict[str, Any]) -> str:
    """One readable line of a report."""
    mode = (
        f"{r['steps_per_block']} steps + {r['cache_write_forwards_per_block']} cache write per {r['frames_per_block']}-frame block"
        if r["streaming"]
        else f"{r['steps_per_block']} steps over the whole clip (bidirectional, not streamed)"
    )
    cfg = f", CFG w={r['guidance_scale']:g}" if r["cfg_batch_factor"] == 2 else ""
    return (
        f"[{r['prompt_index']}] {r['latent_frames']} latent frames ({r['x_training_length']:.1f}x the "
        f"{r['training_frames']}-frame training length) in {r['total_s']:.2f} s: {r['fps']:.1f} frames/s "
        f"(decode {'included' if r['decode_included'] else 'not included'}), first block {r['first_block_latency_s']:.3f} s (latents), "
        f"{mode}{cfg}; KV cache {r['peak_cache_bytes'] / 2**20:.2f} MiB (window {r['window']}, sink {r['sink']}); "
        f"{r['device']} {r['dtype']}, {r['weights']} weights"
    )


@dataclass
class Plan:
    """What a checkpoint generates and how (resolved from the command line and the run config)."""

    module: Any
    checkpoint: Path
    streaming: bool
    horizon: int  # training length in latent frames
    window: int  # KV window in frames (sink excluded)
    sampler: dict[str, Any]
    out: Path
    fps: int


def make_plan(args: argparse.Namespace, prompts: list[str]) -> Plan:
    """Load the checkpoint and validate frames, window and prompts (`ConfigError` otherwise)."""
    from lightning_modules.loading import load_module, resolve_checkpoint

    ckpt = resolve_checkpoint(args.ckpt)
    module = load_module(ckpt, map_location=torch.device(args.device))
    module.sampling_generator().to(DTYPES[args.dtype])
    streaming = module.can_stream
    cfg = module.cfg
    horizon = int(cfg.world.num_frames)
    window = args.window if args.window is not None else int(cfg.paradigm.get("local_window") or horizon)
    sampler = sampler_report(module, streaming)
    fpb = sampler["frames_per_block"] or 1
    if args.frames < 1 or args.frames % fpb:
        raise ConfigError(f"--frames {args.frames} is not a positive multiple of the block ({fpb} frames)")
    if streaming and (window < fpb or args.sink < 0):
        raise ConfigError(f"--window {window} must hold one block ({fpb} frames) and --sink must be >= 0")
    try:  # reject prompts the text encoder cannot read before anything is timed
        module.encode_prompts(prompts)
    except ValueError as err:
        raise ConfigError(f"prompt rejected by the text encoder: {err}") from err
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None
    out = args.out or (run_dir / "generated" if run_dir else Path("generated"))
    fps = args.fps or int(cfg.get("callbacks", {}).get("sample_fps", 16))
    return Plan(module, ckpt, streaming, horizon, window, sampler, out, fps)


def generate_prompt(plan: Plan, index: int, prompt: str, args: argparse.Namespace) -> dict[str, Any]:
    """Generate, time, decode and write one prompt; its report."""
    module, device = plan.module, plan.module.device
    latents, timing = run_one(module, prompt, args.seed + index, args, plan.window, plan.streaming)
    video, decode_s = None, None
    if not args.no_decode:
        _sync(device)
        t0 = time.perf_counter()
        video = module.decode_video(latents)
        _sync(device)
        decode_s = time.perf_counter() - t0
    total = timing["generate_s"] + (decode_s or 0.0)
    out_frames = int((video if video is not None else latents).shape[2])
    report: dict[str, Any] = {
        "prompt_index": index,
        "prompt": prompt,
        "seed": args.seed + index,
        "paradigm": type(module).__name__,
        "checkpoint": str(plan.checkpoint),
        "weights": "ema" if module.generator_ema is not None else "generator",
        "device": str(device),
        "dtype": args.dtype,
        "streaming": plan.streaming,
        "latent_frames": int(latents.shape[2]),
        "latent_shape": list(latents.shape),
        "training_frames": plan.horizon,
        "x_training_length": args.frames / plan.horizon,
        "window": plan.window if plan.streaming else None,
        "sink": args.sink if plan.streaming else None,
        **plan.sampler,
        **timing,
        "first_block_includes_decode": False,  # decode runs once on the whole clip afterwards
        "warmup_runs": args.warmup,
        "decode_s": decode_s,
        "decode_included": video is not None,
        "total_s": total,
        "output_frames": out_frames,
        "fps": out_frames / total,
        "latent_fps": int(latents.shape[2]) / timing["generate_s"],
    }
    meta = {k: report[k] for k in ("prompt", "seed", "paradigm", "checkpoint", "weights", "window", "sink")}
    report.update(write_outputs(latents, video, plan.out / f"{index:02d}_{slug(prompt)}", meta, plan.fps))
    return report


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Generate every prompt (one at a time, batch 1); print and return one report per prompt."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    prompts = read_prompts(args)
    plan = make_plan(args, prompts)
    fpb = plan.sampler["frames_per_block"] or 1
    for _ in range(args.warmup):  # untimed: first-call costs (allocator, kernels, compilation)
        if plan.streaming:
            plan.module.stream([prompts[0]], fpb, seed=args.seed)
        else:
            plan.module.sample([prompts[0]], fpb, seed=args.seed)
    reports = []
    for index, prompt in enumerate(prompts):
        report = generate_prompt(plan, index, prompt, args)
        line = json.dumps(report)
        print(line)
        print(human_line(report))
        with open(plan.out / "report.jsonl", "a") as fh:
            fh.write(line + "\n")
        reports.append(report)
    return reports


if __name__ == "__main__":
    try:
        main()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
