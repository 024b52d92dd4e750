"""The GPU check's training stage: a few Self Forcing DMD and Teacher Forcing iterations on one device
at Wan2.1-1.3B size (random weights, batch 1, activation checkpointing, bf16-mixed), or tiny on CPU.

The Wan-size run composes each experiment with `model=wan_1_3b` (no pretrained weights) on the shapes
world at the latent grid of 832x480 video: 21 frames of 60x104 with the identity codec, so the
backbone sees the real token count (1560 tokens a frame, 32760 a clip) and a 512 x 4096 text context
(the toy text encoder at UMT5's size). Its only departure from Wan2.1: 3 latent channels instead of
16 (the patch embedding and the head, a negligible share of the compute). Prerequisites (teacher,
ODE-initialised generator) are random weights, as in `python -m lightning_modules.bench train`.
"""

from __future__ import annotations

import gc
import statistics
from pathlib import Path
from typing import Any

import torch

from forcing.bench.probes import peak_memory
from forcing.bench.stages import Budget, StageRecord, error_line
from forcing.bench.worlds import WAN_WORLD
from lightning_modules.artifacts import compose_experiment
from lightning_modules.bench import iteration_note, quiet_lightning, time_training, timed_steps

__all__ = ["SF_DMD", "TF", "check_overrides", "train_check_row", "train_stage"]

SF_DMD, TF = "self_forcing_dmd", "teacher_forcing"


def check_overrides(tiny: bool, device: torch.device, root: Path) -> list[str]:
    """Hydra overrides of the stage: Wan2.1-1.3B size (or the tiny preset), batch 1, checkpointing."""
    if tiny:
        size = ["model=tiny", "world.num_frames=6", "world.height=16", "world.width=16"]
    else:
        w = WAN_WORLD
        size = [
            f"model={w.model_group}",
            "model.pretrained=null",
            "+model.overrides.in_dim=3",  # the identity codec's RGB channels
            "+model.overrides.out_dim=3",
            f"world.num_frames={w.horizon}",
            f"world.height={w.height}",
            f"world.width={w.width}",
            "world.text_encoder.dim=4096",  # UMT5-XXL's width and length
            f"world.text_encoder.max_length={w.text_len}",
        ]
    return [
        "pretrained=none",  # the architecture at these sizes, without the shipped shapes base
        *size,
        "model.gradient_checkpointing=true",
        f"hardware={'gpu' if device.type == 'cuda' else 'cpu'}",
        "world.batch_size=1",
        "world.val_batch_size=1",
        f"paths.runs={root}/runs",
        "callbacks.samples_every_n_steps=0",
    ]


def train_check_row(name: str, overrides: list[str], steps: int, device: torch.device, root: Path) -> dict[str, Any]:
    """Iteration times (1 warm-up, then `steps` rounded up to whole generator/critic cycles) and peak memory."""
    cfg = compose_experiment(name, *overrides)
    p = cfg.paradigm
    with peak_memory(device) as peak:
        paradigm, times = time_training(cfg, timed_steps(p, steps), device, root)
    return {
        "experiment": name,
        "paradigm": paradigm,
        "preset": str(cfg.model.preset),
        "precision": str(cfg.hardware.precision),
        "batch": int(cfg.world.batch_size),
        "latent_frames": int(cfg.world.num_frames),
        "frames_per_block": int(p.frames_per_block),
        "iterations": len(times),
        "iteration_s_mean": statistics.fmean(times),
        "iteration_s_median": statistics.median(times),
        "iteration_s_min": min(times),
        "iteration_s": times,
        "peak_mem_bytes": peak.bytes,
        "note": iteration_note(p),
    }


def _release(device: torch.device) -> None:
    """Free what the last run left (its module, optimiser states), so the next one starts clean."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def train_stage(record: StageRecord, budget: Budget, tiny: bool, device: torch.device, steps: int) -> None:
    """SF DMD and TF rows (an experiment that fails, e.g. out of memory, is a skipped note), then the
    summary: mean iteration times and their ratio SF DMD / TF."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, quiet_lightning():
        overrides = check_overrides(tiny, device, Path(tmp))
        record.settings.update({"overrides": overrides, "steps": steps})
        for name in (SF_DMD, TF):
            if budget.remaining() <= 0:
                record.skip(f"{name}: out of time")
                continue
            try:
                record.add(train_check_row(name, overrides, steps, device, Path(tmp)))
            except Exception as err:  # noqa: BLE001 - one experiment failing (OOM) is a note, not the end
                record.skip(f"{name}: {error_line(err)}")
            _release(device)
    means = {r["experiment"]: r["iteration_s_mean"] for r in record.rows}
    if SF_DMD in means and TF in means:
        record.summary.update(
            {
                "sf_dmd_iteration_s": means[SF_DMD],
                "tf_iteration_s": means[TF],
                "iteration_ratio_sf_dmd_over_tf": means[SF_DMD] / means[TF],
            }
        )
