"""Data modules: the shapes world (rendered on the fly) and, at Wan scale, latent shards."""

from __future__ import annotations

import lightning as L
from omegaconf import DictConfig

from forcing.errors import ConfigError
from forcing.world import ClipSpec


def data_parallel_size(cfg: DictConfig) -> int:
    """Ranks that share an iteration's batch: devices x nodes (FSDP2 shards the model, not the data)."""
    hw = cfg.hardware
    return int(hw.devices) * int(hw.num_nodes)


def rank_batch_size(cfg: DictConfig) -> int:
    """The micro-batch of one rank: `world.batch_size` is the global batch of an iteration, as the
    papers state it (Self Forcing: 64 = 1 per GPU on 64 GPUs), split over the ranks and the
    `trainer.accumulate_grad_batches` micro-batches (`lightning_modules.validation` checks it divides)."""
    return int(cfg.world.batch_size) // (data_parallel_size(cfg) * int(cfg.trainer.accumulate_grad_batches))


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """The data module of `cfg.world`."""
    w = cfg.world
    if w.name == "shapes":
        from datamodules.shapes import ShapesDataModule

        return ShapesDataModule(
            num_frames=int(w.num_frames),
            height=int(w.height),
            width=int(w.width),
            batch_size=rank_batch_size(cfg),
            val_batch_size=int(w.val_batch_size),
            max_shapes=int(w.max_shapes),
            seed=int(cfg.seed),
            train_size=int(w.train_size),
            val_size=int(w.val_size),
            num_workers=int(w.num_workers),
        )
    raise ConfigError(f"world={w.name!r} has no data module yet (shapes)")


def validation_clips(cfg: DictConfig, num: int) -> list[ClipSpec]:
    """The first `num` validation clips of `cfg.world` with their ground truth (the streaming
    evaluation's), the same as its data module's; none for a world without ground truth."""
    w = cfg.world
    if w.name != "shapes":
        return []
    from datamodules.shapes import ShapesDataModule

    dm = ShapesDataModule(max_shapes=int(w.max_shapes), val_size=int(w.val_size))
    return [dm.clip_spec(seed) for seed in dm.val_seeds()[:num]]
