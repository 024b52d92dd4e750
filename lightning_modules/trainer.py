"""Build the Lightning Trainer from the `trainer`, `hardware`, `logger` and `callbacks` groups."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig

from callbacks.checkpoint import IterationCheckpoint
from callbacks.evaluation import StreamingEvaluation
from callbacks.iteration import IterationCounter
from callbacks.nan_guard import NonFiniteGuard
from callbacks.progress import IterationProgressBar
from callbacks.samples import SampleVideos
from datamodules import validation_clips
from lightning_modules.checkpoint_io import DistributedCheckpointIO
from lightning_modules.console import quiet_lightning
from lightning_modules.fsdp2_strategy import FSDP2Strategy


def build_strategy(hw: DictConfig) -> str | FSDP2Strategy:
    """`auto` or FSDP2 (`fully_shard` per block in `configure_model`) over all processes.

    FSDP2 on more than one rank writes torch distributed checkpoints (DCP: a directory, one shard file
    per rank, no gather on rank 0), which resume on any number of ranks; one rank writes one file, which
    resumes on any number of ranks too (`lightning_modules.fsdp2_strategy`)."""
    if hw.strategy == "auto":
        return "auto"
    if hw.strategy == "fsdp2":
        world = int(hw.devices) * int(hw.num_nodes)
        return FSDP2Strategy(
            data_parallel_size=world,
            tensor_parallel_size=1,
            save_distributed_checkpoint=world > 1,
            process_group_backend="gloo" if hw.accelerator == "cpu" else None,
        )
    raise ValueError(f"unknown hardware.strategy {hw.strategy!r} (auto | fsdp2)")


def build_trainer(
    cfg: DictConfig, run_dir: Path, extra_callbacks: Sequence[L.Callback] = (), paradigm: type | None = None
) -> L.Trainer:
    """The Trainer: TensorBoard in the run directory, checkpoints, sample videos, streaming
    evaluation, the non-finite guard and a progress bar, all counted in iterations
    (callbacks/iteration.py; optimiser steps are logged as `trainer/optimizer_steps`).

    `trainer.max_steps` counts training iterations for every paradigm; a two-optimiser paradigm
    (`paradigm.optimizer_steps`) gets the matching number of Lightning optimiser steps, and
    accumulates gradients itself (Lightning's accumulation is for automatic optimisation only).
    A `trainer.fast_dev_run` writes no checkpoint (Lightning's rule, which its `save_last` breaks at
    the end of fitting), so a second one in the same run directory is not refused.
    """
    quiet_lightning()
    tcfg, hw, cbs = cfg.trainer, cfg.hardware, cfg.callbacks
    manual = bool(getattr(paradigm, "manual_optimization", False))
    max_steps = int(tcfg.max_steps)
    if paradigm is not None:
        max_steps = paradigm.optimizer_steps(cfg, max_steps)
    fast = tcfg.fast_dev_run
    iterations = int(tcfg.max_steps) if not fast else (1 if fast is True else int(fast))
    logger = TensorBoardLogger(save_dir=str(run_dir.parent), name=run_dir.name, version="", default_hp_metric=False)
    callbacks: list[L.Callback] = [
        NonFiniteGuard(),
        IterationCounter(),
        SampleVideos(
            every_n_steps=int(cbs.samples_every_n_steps),
            num_samples=int(cbs.num_samples),
            fps=int(cbs.sample_fps),
            out_dir=run_dir / "samples",
        ),
        StreamingEvaluation(
            every_n_steps=int(cbs.eval_every_n_steps),
            horizons=list(cbs.eval_horizons),
            num_videos=int(cbs.eval_num_videos),
            window=None if cbs.eval_window is None else int(cbs.eval_window),
            sink=int(cbs.eval_sink),
            out_dir=run_dir / "eval",
            feature_net_dir=Path(cfg.paths.artifacts) / "eval",
            fps=int(cbs.sample_fps),
            at_start=bool(cbs.get("eval_at_start", False)),
            clips=validation_clips(cfg, int(cbs.eval_num_videos)),
        ),
        LearningRateMonitor(logging_interval="step"),
        *extra_callbacks,
    ]
    if not fast:
        keep = int(cbs.keep_last_k)
        callbacks.insert(0, IterationCheckpoint(run_dir / "checkpoints", int(cbs.checkpoint_every_n_steps), keep))
    if tcfg.enable_progress_bar:
        callbacks.append(IterationProgressBar(iterations))
    strategy = build_strategy(hw)
    return L.Trainer(
        accelerator=hw.accelerator,
        devices=hw.devices,
        num_nodes=hw.num_nodes,
        strategy=strategy,
        # one process also resumes a DCP directory (consolidated); FSDP2 reads checkpoints itself
        plugins=[DistributedCheckpointIO()] if strategy == "auto" else None,
        precision=hw.precision,
        max_steps=max_steps,
        accumulate_grad_batches=1 if manual else int(tcfg.accumulate_grad_batches),
        inference_mode=False,  # validation of SiD/GAN losses takes input gradients
        log_every_n_steps=int(tcfg.log_every_n_steps),
        val_check_interval=int(tcfg.val_check_interval),
        check_val_every_n_epoch=None,
        limit_val_batches=tcfg.limit_val_batches,
        num_sanity_val_steps=int(tcfg.num_sanity_val_steps),
        fast_dev_run=tcfg.fast_dev_run,  # bool or a number of batches
        enable_checkpointing=not fast,
        enable_progress_bar=bool(tcfg.enable_progress_bar),
        enable_model_summary=bool(tcfg.get("enable_model_summary", True)),
        deterministic=bool(tcfg.deterministic),
        logger=logger,
        callbacks=callbacks,
        default_root_dir=str(run_dir),
        use_distributed_sampler=False,  # the datamodule gives each rank its own seed stream
    )
