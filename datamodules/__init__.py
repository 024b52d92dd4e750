"""Data modules: the shapes world (rendered on the fly) and, at Wan scale (`world.data`), a prompt list
(`datamodules.prompts`) or VAE-latent shards of real videos (`datamodules.latents`)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from forcing.errors import ConfigError
from forcing.world import ClipSpec

#: the data sources of a world with `world.data` (Wan scale), with what each key must name
DATA_SOURCES: dict[str, str] = {
    "prompts": "a text file, one prompt per line",
    "latents": "a latents folder made by `python -m forcing.data.encode_videos`",
}


def data_parallel_size(cfg: DictConfig) -> int:
    """Ranks that share an iteration's batch: devices x nodes (FSDP2 shards the model, not the data)."""
    hw = cfg.hardware
    return int(hw.devices) * int(hw.num_nodes)


def rank_batch_size(cfg: DictConfig) -> int:
    """The micro-batch of one rank: `world.batch_size` is the global batch of an iteration, as the
    papers state it (Self Forcing: 64 = 1 per GPU on 64 GPUs), split over the ranks and the
    `trainer.accumulate_grad_batches` micro-batches (`lightning_modules.validation` checks it divides)."""
    return int(cfg.world.batch_size) // (data_parallel_size(cfg) * int(cfg.trainer.accumulate_grad_batches))


def check_world_data(cfg: DictConfig, needs_clips: bool) -> None:
    """A world with `world.data` (Wan scale) names an existing source of that kind, and one that holds
    clips when the paradigm trains on real clips (`needs_clips`); one-line `ConfigError` naming the
    missing key, file or folder. Worlds without `world.data` (shapes: rendered) pass."""
    w = cfg.world
    if "data" not in w:
        return
    data = w.data
    if data not in DATA_SOURCES:
        raise ConfigError(f"world.data={data!r} is not one of: {', '.join(DATA_SOURCES)}")
    source = w.get(data)
    if not source:
        raise ConfigError(f"world.data={data} needs world.{data}=<{DATA_SOURCES[data]}>")
    path = Path(str(source))
    if data == "prompts" and not path.is_file():
        raise ConfigError(f"world.prompts={path} does not exist ({DATA_SOURCES[data]})")
    if data == "latents" and not (path / "manifest.json").is_file():
        state = "does not exist" if not path.exists() else "has no manifest.json (empty or unfinished)"
        raise ConfigError(f"world.latents={path} {state} ({DATA_SOURCES[data]})")
    if needs_clips and data == "prompts":
        raise ConfigError(
            f"paradigm {cfg.paradigm.name!r} with objective={cfg.objective.name!r} trains on real clips, but "
            f"world.data=prompts gives prompts only: use world.data=latents and world.latents=<{DATA_SOURCES['latents']}>"
        )


def _wan_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """The prompt list or the latent shards of `world.data`."""
    w = cfg.world
    common = {
        "batch_size": rank_batch_size(cfg), "val_size": int(w.val_size), "val_batch_size": int(w.val_batch_size),
        "num_workers": int(w.num_workers), "seed": int(cfg.seed), "ranks": data_parallel_size(cfg),
    }  # fmt: skip
    check_world_data(cfg, needs_clips=False)
    if w.data == "prompts":
        from datamodules.prompts import PromptDataModule

        return PromptDataModule(w.prompts, **common)
    from datamodules.latents import LatentDataModule

    dm = LatentDataModule(w.latents, **common)
    made = dm.manifest["config"]
    if (dm.latent_shape[1], made["height"], made["width"]) != (int(w.num_frames), int(w.height), int(w.width)):
        raise ConfigError(
            f"latents in {w.latents} are {dm.latent_shape[1]} latent frames of {made['height']}x{made['width']} "
            f"pixels, the world's clips {w.num_frames} of {w.height}x{w.width} (world.num_frames, height, width)"
        )
    return dm


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """The data module of `cfg.world`: shapes clips, or at Wan scale that of `world.data`."""
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
    if "data" in w:
        return _wan_datamodule(cfg)
    raise ConfigError(f"world={w.name!r} has no data module (shapes, or a world with world.data)")


def validation_clips(cfg: DictConfig, num: int) -> list[ClipSpec]:
    """The first `num` validation clips of `cfg.world` with their ground truth (the streaming
    evaluation's), the same as its data module's; none for a world without ground truth (Wan scale:
    prompts and real videos have no closed-form ground truth, the evaluation is skipped with a warning)."""
    w = cfg.world
    if w.name != "shapes":
        return []
    from datamodules.shapes import ShapesDataModule

    dm = ShapesDataModule(max_shapes=int(w.max_shapes), val_size=int(w.val_size))
    return [dm.clip_spec(seed) for seed in dm.val_seeds()[:num]]
