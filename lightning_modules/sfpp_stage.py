"""The stages of Self-Forcing++ as strategy objects: what differs between extended DMD and GRPO
(networks, optimisers, the training step, `val/loss`, step count and config checks), chosen once
when `SelfForcingPP` is built from `paradigm.stage`. The networks stay attributes of the module,
so a checkpoint's `state_dict` keys do not depend on this split."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from lightning_modules.self_forcing import SelfForcing


class Stage:
    """The stage-dependent part of a `SelfForcingPP` module (`module`): subclasses implement each method."""

    def __init__(self, module: SelfForcing) -> None:
        self.module = module  # the SelfForcingPP that owns this stage (typed by its base: no import cycle)

    @classmethod
    def validate_config(cls, cfg: DictConfig) -> None:
        """Raise `ConfigError` for options this stage cannot run (default: none)."""

    @classmethod
    def optimizer_steps(cls, cfg: DictConfig, iterations: int) -> int:
        """Lightning optimiser steps of `iterations` training iterations."""
        raise NotImplementedError

    def build_networks(self) -> None:
        """Build the stage's networks as attributes of the module."""
        raise NotImplementedError

    def configure_model(self) -> None:
        """Build (once) and shard the networks."""
        raise NotImplementedError

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """The stage's optimisers."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """One training iteration (manual optimisation)."""
        raise NotImplementedError

    def loss_terms(self, batch: dict[str, Any], rngs: list) -> dict[str, Tensor]:
        """`val/loss` on a fixed batch."""
        raise NotImplementedError


class DMDStage(Stage):
    """Extended DMD (eq. 2): Self Forcing's networks, optimisers, update and `val/loss`, applied to
    the window of the long rollout (`SelfForcingPP.rollout`)."""

    @classmethod
    def optimizer_steps(cls, cfg: DictConfig, iterations: int) -> int:
        """Self Forcing's count: a critic step per iteration plus a generator step every `ratio`-th."""
        return SelfForcing.optimizer_steps(cfg, iterations)

    def build_networks(self) -> None:
        """Self Forcing's: generator, frozen real score, critic and the objective."""
        SelfForcing.build_networks(self.module)

    def configure_model(self) -> None:
        """Self Forcing's (the objective's own heads sharded too)."""
        SelfForcing.configure_model(self.module)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """Generator and critic AdamW (Self Forcing)."""
        return SelfForcing.configure_optimizers(self.module)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Self Forcing's step on the window, plus `train/rollout_frames`, `train/window_start` and
        `train/backward_noise_t`."""
        m = self.module
        loss = SelfForcing.training_step(m, batch, batch_idx)
        frames, start, noise_step = m.last_window
        m.log("train/rollout_frames", float(frames), batch_size=1)
        m.log("train/window_start", float(start), batch_size=1)
        m.log("train/backward_noise_t", float(m.grid()[noise_step]), batch_size=1)
        return loss

    def loss_terms(self, batch: dict[str, Any], rngs: list) -> dict[str, Tensor]:
        """Self Forcing's `val/loss` (the objective's generator loss), on a window."""
        return SelfForcing.loss_terms(self.module, batch, rngs)
