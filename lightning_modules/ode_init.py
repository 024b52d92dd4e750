"""ODE initialisation (Self Forcing / CausVid, REFERENCE §3): regress the teacher's ODE endpoint.

Pairs come from the bidirectional teacher (`python -m lightning_modules.ode_pairs`): states x_{t_k} of its
48-step shifted Euler run with CFG at the student's 4 grid points, and the endpoint x0. The causal
student (block-causal attention, `frames_per_block`, optional `local_window`, initialised from the
teacher's weights when `paradigm.init_from` is set: same architecture) sees, for every block, the
state at a grid index drawn per block and per clip, at that index's timestep; its x0 prediction
x_t - sigma v regresses the endpoint. It then samples like a distilled generator: the stochastic
4-step sampler on the same grid, without guidance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor

from forcing.diffusion import sigma_from_t, x0_from_velocity
from forcing.errors import ConfigError
from forcing.objectives import ode_regression_loss
from lightning_modules.base import ForcingModule, build_backbone


def pair_count(cfg: DictConfig, num: int) -> int:
    """Pairs to make for `cfg`: `num`, or for a `trainer.fast_dev_run` of n batches just enough for
    the validation pairs and n global training batches (`world.batch_size` spans all ranks).
    A function of world and trainer only: a prerequisite (one device, the consumer's world and
    trainer) makes as many pairs as its consumer does (D_Bi and the causal pairs share seeds)."""
    fast = cfg.trainer.get("fast_dev_run")
    if not fast:
        return num
    batches = 1 if fast is True else int(fast)
    w = cfg.world
    return min(num, int(w.val_size) + batches * int(w.batch_size))


class ODEInit(ForcingModule):
    """ODE-initialisation paradigm: causal student regressing ODE endpoints."""

    #: attention mode of the student (a causal-ODE subclass with clean context may change it)
    mode: str = "block_causal"
    #: trains on ODE pairs (`paradigm.pairs_path`), not on the world's data module
    uses_world_data: ClassVar[bool] = False

    # ------------------------------------------------------------------ config and data
    @classmethod
    def validate_config(cls, cfg: DictConfig) -> None:
        """Base checks, plus an existing `paradigm.init_from` when one is given."""
        super().validate_config(cfg)
        init_from = cfg.paradigm.get("init_from")
        if init_from and not Path(str(init_from)).exists():
            raise ConfigError(
                f"paradigm.init_from={init_from} does not exist (a weights folder of the teacher)"
            )

    #: what the teacher is called in errors
    teacher_role: str = "teacher"

    @classmethod
    def pairs_kind(cls, cfg: DictConfig, num: int) -> str:
        """Artifact kind of the ODE pairs (with the teacher's identity, the store key)."""
        p, w = cfg.paradigm, cfg.world
        return f"ode_pairs-n{num}-w{p.pair_guidance_scale}-f{w.num_frames}"

    @classmethod
    def make_pairs(cls, cfg: DictConfig, teacher: Path, out: Path, num: int) -> None:
        """Generate `num` shapes-world pairs from the teacher into `out` (bidirectional teacher)."""
        from forcing.ode_pairs import make_shapes_pairs

        p, w = cfg.paradigm, cfg.world
        make_shapes_pairs(
            teacher, out, num, world=OmegaConf.to_container(w, resolve=True),
            guidance_scale=float(p.pair_guidance_scale), num_frames=int(w.num_frames),
            height=int(w.height), width=int(w.width), max_shapes=int(w.max_shapes), base_seed=0,
        )

    @classmethod
    def prepare_prerequisites(cls, cfg: DictConfig) -> None:
        """Teacher weights (artifact store), the student's init (= the teacher: same architecture)
        and, on the shapes world, ODE pairs generated from the teacher (keyed by the teacher's
        identity and the pair settings, shared across student seeds)."""
        from forcing.ode_pairs import COMMAND
        from lightning_modules.artifacts import ensure, prerequisite_config, resolve_path, store_dir

        p, w = cfg.paradigm, cfg.world
        needs_teacher = not p.get("init_from") or not p.get("pairs_path")
        teacher = resolve_path(cfg, cfg.teacher, cls.teacher_role) if needs_teacher else None
        with open_dict(cfg):
            if not p.get("init_from"):
                p.init_from = str(teacher)
            if p.get("pairs_path"):
                return
            if w.name != "shapes":
                raise ConfigError(f"paradigm.pairs_path is not set: make ODE pairs with `{COMMAND}`")
            num = pair_count(cfg, int(p.num_pairs))
            key = cfg  # a teacher given by path: pairs keyed by this run's config (which holds the path)
            if cfg.teacher.get("experiment") and not cfg.teacher.get("path"):
                key = prerequisite_config(cfg, str(cfg.teacher.experiment))  # the teacher's identity
            folder = store_dir(key, cls.pairs_kind(cfg, num))
            p.pairs_path = str(ensure(folder, lambda out: cls.make_pairs(cfg, teacher, out, num), "ODE pairs"))

    @classmethod
    def build_datamodule(cls, cfg: DictConfig) -> L.LightningDataModule:
        """The ODE pairs of `paradigm.pairs_path`, checked against the student's grid and the world."""
        from datamodules import rank_batch_size
        from datamodules.ode_pairs import ODEPairsDataModule
        from forcing.ode_pairs import COMMAND

        path = cfg.paradigm.get("pairs_path")
        if not path:
            raise ConfigError(
                f"paradigm.pairs_path is not set: make ODE pairs with `{COMMAND}` and pass paradigm.pairs_path=<folder>"
            )
        w = cfg.world
        dm = ODEPairsDataModule(
            path,
            batch_size=rank_batch_size(cfg),
            val_size=int(w.val_size),
            val_batch_size=int(w.val_batch_size),
            num_workers=int(w.num_workers),
            seed=int(cfg.seed),
            target_is_video=w.codec.kind == "identity",
        )
        frames = dm.latent_shape[1]
        if frames != int(w.num_frames):
            raise ConfigError(
                f"ODE pairs in {path} have {frames} latent frames, world.num_frames={w.num_frames}"
            )
        return dm

    def build_networks(self) -> None:
        """The student: from the teacher's weights (`paradigm.init_from`) or the model group."""
        self.generator = build_backbone(self.cfg.model, path=self.p.get("init_from"))

    # ------------------------------------------------------------------ the recipe
    def forward_kwargs(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The student's attention: block-causal chunks, optional local window."""
        return {
            "mode": self.mode,
            "frames_per_block": int(self.p.frames_per_block),
            "local_window": self.p.get("local_window"),
        }

    def grid_indices(self, rngs: list[torch.Generator], num_points: int, num_frames: int) -> Tensor:
        """A uniform grid index per block and clip, repeated over the block's frames: [B, F]."""
        fpb = int(self.p.frames_per_block)
        idx = [torch.randint(0, num_points, (num_frames // fpb,), generator=g, device=g.device) for g in rngs]
        return torch.stack(idx).to(self.device).repeat_interleave(fpb, dim=1)

    def student_inputs(
        self, batch: dict[str, Any], rngs: list[torch.Generator]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(x_t [B, C, F, H, W], t [B, F], index [B, F]): each frame takes its block's grid state."""
        states = batch["states"].to(self.device)  # [B, K, C, F, H, W]
        b, k, _, f = states.shape[:4]
        idx = self.grid_indices(rngs, k, f)
        rows = torch.arange(b, device=self.device)[:, None]
        frames = torch.arange(f, device=self.device)[None, :]
        x_t = states.permute(0, 1, 3, 2, 4, 5)[rows, idx, frames]  # [B, F, C, H, W]
        t = batch["grid_t"].to(self.device, torch.float32)[idx]
        return x_t.permute(0, 2, 1, 3, 4).contiguous(), t, idx

    def loss_terms(self, batch: dict[str, Any], rngs: list[torch.Generator]) -> dict[str, Tensor]:
        """ODE regression: || x_t - sigma v_theta(x_t, t) - x0^ODE ||^2 (CausVid / Self Forcing init)."""
        x_t, t, _ = self.student_inputs(batch, rngs)
        context = self.encode_prompts(batch["prompt"])
        v = self.generator(x_t, t, context, **self.forward_kwargs(batch))
        x0 = x0_from_velocity(x_t, v, sigma_from_t(t))  # x0 = x_t - sigma v
        return {"loss": ode_regression_loss(x0, batch["target"].to(self.device))}

    def sampler_settings(self) -> dict[str, Any]:
        """Distilled sampling: the stochastic few-step sampler on the 4-step grid, no guidance."""
        return self.few_step_settings()
