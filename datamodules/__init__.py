"""Data modules: the shapes world (rendered on the fly) and, at Wan scale, latent shards."""

from __future__ import annotations

import lightning as L
from omegaconf import DictConfig

from forcing.errors import ConfigError


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """The data module of `cfg.world`."""
    w = cfg.world
    if w.name == "shapes":
        from datamodules.shapes import ShapesDataModule

        return ShapesDataModule(
            num_frames=int(w.num_frames),
            height=int(w.height),
            width=int(w.width),
            batch_size=int(w.batch_size),
            val_batch_size=int(w.val_batch_size),
            max_shapes=int(w.max_shapes),
            seed=int(cfg.seed),
            train_size=int(w.train_size),
            val_size=int(w.val_size),
            num_workers=int(w.num_workers),
        )
    raise ConfigError(f"world={w.name!r} has no data module yet (shapes)")
