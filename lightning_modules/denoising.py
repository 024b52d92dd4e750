"""Shared parts of the paradigms that learn from data by flow matching (teacher, TF, DF).

As in the papers, where TF and DF (and Causal Forcing's AR teacher) are fine-tuned from the pretrained
bidirectional Wan2.1, they start from `paradigm.generator_init`: the shapes world's base model by
default (`experiment: shapes_teacher`), a weights folder by `path`, or random weights when both are null
(from scratch; the base itself).
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig, open_dict
from torch import Tensor

from forcing.diffusion.flow import add_noise, sigma_from_t
from forcing.diffusion.schedule import euler_timesteps, sample_block_t, sample_logit_normal_block_t
from forcing.ema import ema_update
from forcing.objectives import flow_matching_loss
from forcing.rollout import SamplerSpec
from lightning_modules.base import ForcingModule, build_backbone


class DenoisingModule(ForcingModule):
    """Flow matching on data with per-block timesteps; many-step AR sampling with CFG."""

    #: forward kwargs that select the attention mode of the paradigm
    mode: str = "block_causal"

    @classmethod
    def prepare_prerequisites(cls, cfg: DictConfig) -> None:
        """Resolve `paradigm.generator_init` (the base model to fine-tune from) to a weights folder:
        its `path` (must exist) or the artifact of its `experiment` (trained first when missing)."""
        from lightning_modules.artifacts import resolve_path

        init = cfg.paradigm.get("generator_init")
        if init is None or not (init.get("path") or init.get("experiment")):
            return  # from scratch
        path = resolve_path(cfg, init, "base model (paradigm.generator_init)")
        with open_dict(cfg):
            init.path = str(path)

    def build_networks(self) -> None:
        """The generator: the base model's weights (`paradigm.generator_init.path`) or the model group."""
        init = self.p.get("generator_init")
        self.generator = build_backbone(self.cfg.model, path=init.get("path") if init is not None else None)

    def block_timesteps(self, rngs: list[torch.Generator]) -> Tensor:
        """Independent shifted timestep per block, expanded to frames: [B, F]; drawn uniformly on
        Wan's shifted training grid (`t_sampling: uniform`) or logit-normal (`logit_normal`, SD3)."""
        frames, fpb = int(self.cfg.world.num_frames), int(self.p.frames_per_block)
        shift, kind = float(self.p.shift), self.p.get("t_sampling", "uniform")
        if kind not in ("uniform", "logit_normal"):
            raise ValueError(f"paradigm.t_sampling={kind!r}: expected uniform or logit_normal")

        def draw(g: torch.Generator) -> Tensor:
            if kind == "logit_normal":
                return sample_logit_normal_block_t(1, frames // fpb, fpb, shift=shift, generator=g)
            return sample_block_t(1, frames // fpb, fpb, shift=shift, min_t=0.0, max_t=1000.0, generator=g)

        return torch.cat([draw(g) for g in rngs]).to(self.device)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """EMA of the weights after each optimiser step (`paradigm.ema_decay`, from `ema_start`)."""
        if self.generator_ema is not None and (batch_idx + 1) % int(self.cfg.trainer.accumulate_grad_batches) == 0:
            ema_update(self.generator_ema, self.generator, float(self.p.ema_decay),
                       step=int(self.global_step), start_step=int(self.p.get("ema_start", 0)))

    def forward_kwargs(self, x0: Tensor) -> dict[str, Any]:
        """The backbone's attention arguments for this paradigm."""
        return {
            "mode": self.mode,
            "frames_per_block": int(self.p.frames_per_block),
            "local_window": self.p.get("local_window"),
        }

    def loss_terms(self, batch: dict[str, Any], rngs: list[torch.Generator]) -> dict[str, Tensor]:
        """Flow-matching loss: v_theta(x_t, t) vs eps - x0 (Wan's timestep weighting optional)."""
        x0 = self.clean_latents(batch)  # [B, C, F, H, W]
        cond = self.condition(batch["prompt"], dropout=float(self.p.prompt_dropout), rngs=rngs)
        t = self.block_timesteps(rngs)  # [B, F]
        noise = self.randn(tuple(x0.shape[1:]), rngs)
        x_t = add_noise(x0, noise, sigma_from_t(t))
        v = self.generator(x_t, t, cond.context, **self.forward_kwargs(x0))
        loss = flow_matching_loss(v, x0, t, noise, weighting=self.p.get("loss_weighting", "none"), shift=float(self.p.shift))
        return {"loss": loss}

    def sampler_settings(self) -> SamplerSpec:
        """Many-step AR sampling: Euler with CFG per block, clean context in the KV cache."""
        steps = euler_timesteps(int(self.p.sample_steps), shift=float(self.p.sample_shift))[:-1]
        return SamplerSpec(f"{type(self).__name__} Euler", self.p.frames_per_block, steps.tolist(), False,
                           self.p.guidance_scale)
