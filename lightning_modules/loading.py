"""Load a trained paradigm from its Lightning checkpoint, ready to sample.

Every checkpoint of the suite (a file, or a DCP directory of an FSDP2 run, consolidated on reading)
holds the resolved run config (`hyper_parameters["config"]`) and the module's trainable `state_dict`
(`generator.*`, optional `generator_ema.*`, critic); the frozen networks are referenced by source and
hash (`lightning_modules.frozen_state`). The config names the paradigm class (`paradigm._target_`), so
one loader serves every paradigm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from forcing.errors import ConfigError
from lightning_modules.base import ForcingModule
from lightning_modules.checkpoint_files import newest_complete
from lightning_modules.checkpoint_io import read_checkpoint_dict
from lightning_modules.frozen_state import CHECKPOINT_KEY, check_frozen
from lightning_modules.launch import check_checkpoint_file, paradigm_class
from lightning_modules.validation import CONF

__all__ = ["WEIGHT_SOURCES", "load_module", "module_from_checkpoint", "read_checkpoint", "resolve_checkpoint"]

#: config keys naming weights that networks are initialised from when a run starts (base model,
#: teacher, initialised generator); the checkpoint holds the trained weights of every trainable
#: network, so they are cleared before building: no artifact store or Wan folder is needed to load a
#: run. Frozen backbones built from them (teacher, real score, reference policy) are then random
#: placeholders: sampling, export and evaluation use only the generator, text encoder and codec.
WEIGHT_SOURCES = (
    "model.pretrained",
    "teacher.path",
    "paradigm.generator_init.path",
    "paradigm.init_from",
    "paradigm.real_score.path",
    "paradigm.critic.path",
)


def with_objective_target(cfg: DictConfig) -> DictConfig:
    """A run config stored before objectives named their class gets `objective._target_` from the
    `conf/objective/` option of the same `objective.name` (no option declares it: left as is)."""
    objective = cfg.get("objective")
    if objective is None or "_target_" in objective:
        return cfg
    for option in sorted((CONF / "objective").glob("*.yaml")):
        stored = OmegaConf.load(option)
        if stored.get("name") == objective.get("name") and "_target_" in stored:
            with open_dict(cfg):
                objective._target_ = stored._target_
    return cfg


def resolve_checkpoint(checkpoint: str | Path) -> Path:
    """The checkpoint of `checkpoint`: a `.ckpt` file or DCP directory, or a run directory (its newest
    complete checkpoint, `checkpoints/last.ckpt` unless a write was interrupted)."""
    path = Path(checkpoint)
    if not path.exists():
        raise ConfigError(f"checkpoint {path} does not exist (give a .ckpt file or a run directory)")
    if path.is_dir() and (path / "checkpoints").is_dir():
        newest = newest_complete(path / "checkpoints")
        if newest is None:
            raise ConfigError(f"run directory {path} has no checkpoints/last.ckpt nor any other checkpoint")
        return newest
    return path


def read_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict of a suite checkpoint (validated: a zip archive or a complete DCP directory,
    with config and weights; a DCP directory is consolidated in memory).

    Checkpoints are unpickled with `weights_only=False` (Lightning stores loop and callback
    state): load only checkpoints you trust.
    """
    check_checkpoint_file(path)
    try:
        ckpt = read_checkpoint_dict(path, map_location)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise ConfigError(f"checkpoint {path} cannot be read ({type(err).__name__}: {err})") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ConfigError(f"checkpoint {path} holds no state_dict (not a Lightning checkpoint)")
    config = (ckpt.get("hyper_parameters") or {}).get("config")
    if not isinstance(config, dict) or "paradigm" not in config:
        raise ConfigError(
            f"checkpoint {path} holds no run config (hyper_parameters['config'] with a paradigm)"
        )
    return ckpt


def load_module(checkpoint: str | Path, map_location: str | torch.device = "cpu") -> ForcingModule:
    """The paradigm module of a checkpoint (file, DCP directory or run directory): `module_from_checkpoint`."""
    path = resolve_checkpoint(checkpoint)
    return module_from_checkpoint(read_checkpoint(path, map_location), path, map_location)


def module_from_checkpoint(
    ckpt: dict[str, Any], path: Path, map_location: str | torch.device = "cpu"
) -> ForcingModule:
    """The paradigm module of the checkpoint dict `ckpt` (read from `path`), weights loaded strictly, in eval mode.

    The class comes from the stored config's `paradigm._target_`; networks are built by
    `configure_model()` (no device mesh: unsharded) from random initialisation (`WEIGHT_SOURCES`
    cleared), then the `state_dict` is loaded with `strict=True`, so every trainable network must be
    in the checkpoint and a checkpoint that does not match its own config is an error. Frozen encoders
    of the world (`world.text_encoder`, `world.codec`) are built from their configured folders and must
    hash as recorded; frozen backbones are random placeholders (`WEIGHT_SOURCES`).
    """
    cfg = with_objective_target(OmegaConf.create(ckpt["hyper_parameters"]["config"]))
    for key in WEIGHT_SOURCES:
        if OmegaConf.select(cfg, key) is not None:
            OmegaConf.update(cfg, key, None)
    cls = paradigm_class(cfg)
    module = cls(cfg)
    module.configure_model()
    try:
        module.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as err:
        raise ConfigError(f"checkpoint {path} does not match its config's networks: {err}") from err
    check_frozen(ckpt.get(CHECKPOINT_KEY), module.frozen_records, path, rebuilt_only=True)
    return module.to(map_location).eval()
