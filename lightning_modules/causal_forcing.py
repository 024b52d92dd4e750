"""Causal Forcing (REFERENCE §3): stage 2 of the three stages, in its two variants.

1. AR diffusion teacher by Teacher Forcing: experiment `teacher_forcing` (`_framewise`).
2. Causal ODE (`CausalODE`): PF-ODE trajectories of the AR teacher with the ground-truth clean
   context (48 steps, shift 5, CFG, states at grid indices [0, 12, 24, 36] + endpoint); the student,
   initialised from the AR teacher, regresses the endpoint in teacher-forcing mode over
   [clean GT context | noisy states]. A bidirectional teacher's ODE breaks frame-level injectivity
   (the causal student regresses a conditional mean and blurs); the AR teacher's does not.
   Variant (Causal Forcing++, `CausalConsistency`): causal consistency distillation, LCM style on
   the 48-step grid, one CFG UniPC step of the frozen AR teacher (App. D; `teacher_solver: euler`
   keeps the first-order Euler step), EMA target (checkpointed).
3. Asymmetric DMD exactly as Self Forcing (bidirectional real score), initialised from stage 2:
   the `SelfForcing` paradigm with `paradigm.generator_init.experiment=causal_ode` (or `causal_cd`,
   `causal_ode_dbi`; configs only).
The paper's D_Bi protocol (the AR teacher trained on the bidirectional teacher's samples) is
`lightning_modules.causal_forcing_dbi`.
Both stage-2 students sample like distilled generators: stochastic 4-step AR on the few-step grid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor, nn

from forcing.diffusion import (
    Conditioning,
    Denoiser,
    add_noise,
    euler_timesteps,
    sigma_from_t,
    x0_from_velocity,
)
from forcing.ema import ema_update
from forcing.errors import ConfigError
from forcing.models import CausalWanModel
from forcing.objectives.consistency import (
    TEACHER_SOLVERS,
    consistency_loss,
    sample_consistency_t,
    teacher_euler_step,
    teacher_unipc_step,
    unipc_flow_scheduler,
)
from forcing.ode_pairs import generate_ode_pairs, make_shapes_pairs
from lightning_modules.base import ForcingModule, build_backbone
from lightning_modules.ode_init import ODEInit

#: attention mode of the AR teacher and of both stage-2 students
TF_MODE = "teacher_forcing"


# ---------------------------------------------------------------------------------------------- causal ODE pairs
def causal_pair_kwargs(frames_per_block: int) -> dict[str, Any]:
    """The AR teacher's forward for causal ODE pairs: teacher-forcing mode over [clean GT context | noisy]."""
    return {"mode": TF_MODE, "frames_per_block": int(frames_per_block)}


def generate_causal_pairs(
    teacher: nn.Module,
    text_encoder: nn.Module,
    prompts: list[str],
    seeds: list[int],
    context: Tensor,
    *,
    frames_per_block: int,
    guidance_scale: float,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    teacher_name: str | None = None,
) -> dict[str, Any]:
    """Causal ODE pairs (`forcing.ode_pairs.generate_ode_pairs` in teacher-forcing mode): the AR
    teacher's 48-step shift-5 CFG Euler ODE over [clean GT `context` [N, C, F, H, W] | noisy], states
    on the student's 4-step grid + endpoint. Noisy block i sees the clean GT blocks < i, so every
    block's trajectory is conditioned on the true past (block 0 sees none); `context` is stored."""
    return generate_ode_pairs(
        teacher, text_encoder, prompts, seeds, tuple(context.shape[1:]), guidance_scale=guidance_scale,
        batch_size=batch_size, device=device, forward_kwargs=causal_pair_kwargs(frames_per_block),
        context_video=context, teacher_name=teacher_name,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------- stage 2
class CausalODE(ODEInit):
    """Causal ODE distillation: ODE regression onto the AR teacher's endpoints, with clean GT context."""

    mode: str = TF_MODE
    teacher_role = "AR teacher"

    @classmethod
    def pairs_kind(cls, cfg: DictConfig, num: int) -> str:
        """Artifact kind of the pairs: names the teacher experiment and mode (never the bidirectional pairs')."""
        p = cfg.paradigm
        teacher = "path" if cfg.teacher.get("path") else cfg.teacher.get("experiment") or "path"
        return (f"causal_ode_pairs-{teacher}-{TF_MODE}-b{p.frames_per_block}-n{num}-w{p.pair_guidance_scale}"
                f"-f{cfg.world.num_frames}")  # fmt: skip

    @classmethod
    def make_pairs(cls, cfg: DictConfig, teacher: Path, out: Path, num: int) -> None:
        """Causal pairs: the AR teacher's ODE with the ground-truth clean context of each clip."""
        p = cfg.paradigm
        make_shapes_pairs(
            teacher, out, num, world=OmegaConf.to_container(cfg.world, resolve=True),
            guidance_scale=float(p.pair_guidance_scale), forward_kwargs=causal_pair_kwargs(int(p.frames_per_block)),
            context="ground_truth",
        )

    @classmethod
    def build_datamodule(cls, cfg: DictConfig) -> L.LightningDataModule:
        """ODE pairs that must come from an AR teacher in teacher-forcing mode with the clean context."""
        dm = super().build_datamodule(cfg)
        made = dm.manifest.get("forward_kwargs", {})
        if made.get("mode") != TF_MODE or "context" not in dm.pairs.keys:
            raise ConfigError(
                f"ODE pairs in {dm.path} were made in mode {made.get('mode')!r} without a stored clean context: "
                f"causal ODE needs pairs of an AR teacher in mode {TF_MODE!r} with the ground-truth context"
            )
        fpb = made.get("frames_per_block")
        if fpb is not None and int(fpb) != int(cfg.paradigm.frames_per_block):
            raise ConfigError(f"ODE pairs in {dm.path} use {fpb} frames per block, "
                              f"paradigm.frames_per_block={cfg.paradigm.frames_per_block}")  # fmt: skip
        return dm

    def forward_kwargs(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Teacher-forcing mode over [clean GT context of the pair | noisy grid states]."""
        if "context" not in batch:
            raise ConfigError("causal ODE batches need the pairs' clean context (key 'context')")
        return {**super().forward_kwargs(batch), "clean_x": batch["context"].to(self.device)}


class CausalConsistency(ForcingModule):
    """Causal consistency distillation (LCM style) of the AR teacher, with clean GT context."""

    mode: str = TF_MODE

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        self.teacher_net: CausalWanModel | None = None
        self._unipc: Any = None  # diffusers' UniPC scheduler of the teacher step (built on first use)

    # ------------------------------------------------------------------ config
    @classmethod
    def validate_config(cls, cfg: DictConfig) -> None:
        """Base checks, an EMA target, a 48-style grid and an AR teacher to distil."""
        super().validate_config(cfg)
        p = cfg.paradigm
        if p.get("ema_decay") is None:
            raise ConfigError(
                "causal consistency distillation needs paradigm.ema_decay (its target is the EMA)"
            )
        if int(p.num_steps) < 1:
            raise ConfigError(f"paradigm.num_steps={p.num_steps} must be >= 1")
        if p.teacher_solver not in TEACHER_SOLVERS:
            raise ConfigError(f"paradigm.teacher_solver={p.teacher_solver!r} is not one of {', '.join(TEACHER_SOLVERS)}")
        if not (cfg.teacher.get("path") or cfg.teacher.get("experiment")):
            raise ConfigError(
                "causal consistency distillation needs the AR teacher: set teacher=shapes_ar_teacher"
            )
        init_from = p.get("init_from")
        if init_from and not Path(str(init_from)).exists():
            raise ConfigError(f"paradigm.init_from={init_from} does not exist (a weights folder)")

    @classmethod
    def prepare_prerequisites(cls, cfg: DictConfig) -> None:
        """The AR teacher's weights (artifact store); the student (and its EMA) start from them."""
        from lightning_modules.artifacts import resolve_path

        teacher = resolve_path(cfg, cfg.teacher, "AR teacher")
        with open_dict(cfg):
            cfg.teacher.path = str(teacher)
            if not cfg.paradigm.get("init_from"):
                cfg.paradigm.init_from = str(teacher)

    # ------------------------------------------------------------------ networks
    def build_networks(self) -> None:
        """Student (from `init_from`) and the frozen AR teacher; random weights without artifacts (tests)."""
        overrides = OmegaConf.to_container(self.cfg.model.overrides, resolve=True)

        def load(path: str | None) -> CausalWanModel:
            if not path:
                return build_backbone(self.cfg.model)
            return CausalWanModel.from_pretrained(str(path), preset=self.cfg.model.preset, **overrides)

        teacher = self.cfg.teacher.get("path")
        self.generator = load(self.p.get("init_from") or teacher)
        self.teacher_net = load(teacher).requires_grad_(False).eval()

    def backbones(self) -> list[CausalWanModel]:
        """Student, EMA target and the frozen teacher are sharded alike."""
        return [*super().backbones(), self.teacher_net]

    # ------------------------------------------------------------------ pieces of the recipe
    def grid(self) -> Tensor:
        """The N-step shift-5 Euler grid t_0 = 1000 > ... > t_N = 0 (N + 1 points)."""
        return euler_timesteps(int(self.p.num_steps), float(self.p.shift), device=self.device)

    def forward_kwargs(self, clean_x: Tensor) -> dict[str, Any]:
        """Teacher-forcing mode over [clean GT context | noisy] for teacher, student and target."""
        return {"mode": self.mode, "frames_per_block": int(self.p.frames_per_block),
                "local_window": self.p.get("local_window"), "clean_x": clean_x}  # fmt: skip

    def consistency_timesteps(self, rngs: list[torch.Generator]) -> tuple[Tensor, Tensor]:
        """(t_n, t_{n+1}) per block (n ~ U{0..N-1}, drawn per clip), repeated over frames: [B, F] each."""
        fpb = int(self.p.frames_per_block)
        blocks = int(self.cfg.world.num_frames) // fpb
        grid = self.grid()
        pairs = [sample_consistency_t(1, grid, blocks, fpb, generator=g) for g in rngs]
        return torch.cat([a for a, _ in pairs]), torch.cat([b for _, b in pairs])

    @torch.no_grad()
    def teacher_step(
        self, x_t: Tensor, t_n: Tensor, t_next: Tensor, cond: Conditioning, kwargs: dict
    ) -> Tensor:
        """One CFG ODE step of the frozen AR teacher, t_n -> t_{n+1} (App. D): `unipc` = diffusers'
        UniPC from a fresh state (UniP-1, i.e. Euler, + the UniC-1 corrector with a second teacher
        call: second order); `euler` = x_{t_n} + (sigma_{n+1} - sigma_n) v_w (first order)."""
        teacher = Denoiser(self.teacher_net, guidance_scale=float(self.p.teacher_guidance_scale), **kwargs)
        v = teacher.velocity(x_t, t_n, cond)
        if self.p.teacher_solver == "euler":
            return teacher_euler_step(x_t, v, t_n, t_next)
        index = (t_n[..., None] - self.grid()).abs().argmin(-1)  # n of t_n on the grid, per frame
        return teacher_unipc_step(lambda x, t: teacher.velocity(x, t, cond), x_t, v, index, self.unipc())

    def unipc(self) -> Any:
        """diffusers' flow-matching UniPC scheduler on this grid (built once)."""
        if self._unipc is None:
            self._unipc = unipc_flow_scheduler(int(self.p.num_steps), float(self.p.shift))
        return self._unipc

    def student_x0(self, x_t: Tensor, t: Tensor, context: Tensor, kwargs: dict) -> Tensor:
        """f_theta(x_t, t) = x_t - sigma v_theta: the consistency function (boundary f(x, 0) = x)."""
        return x0_from_velocity(x_t, self.generator(x_t, t, context, **kwargs), sigma_from_t(t))

    @torch.no_grad()
    def target_x0(self, x_next: Tensor, t_next: Tensor, context: Tensor, kwargs: dict) -> Tensor:
        """f_ema(x^_{t_{n+1}}, t_{n+1}) = x - sigma v_ema: the EMA target network's x0 (no grad)."""
        return x0_from_velocity(
            x_next, self.generator_ema(x_next, t_next, context, **kwargs), sigma_from_t(t_next)
        )

    def loss_terms(self, batch: dict[str, Any], rngs: list[torch.Generator]) -> dict[str, Tensor]:
        """LCM loss d(f_theta(x_{t_n}, t_n), sg[f_ema(x^_{t_{n+1}}, t_{n+1})]) with clean GT context."""
        x0 = self.clean_latents(batch)  # ground truth [B, C, F, H, W]
        cond = self.condition(batch["prompt"])
        t_n, t_next = self.consistency_timesteps(rngs)
        x_t = add_noise(
            x0, self.randn(tuple(x0.shape[1:]), rngs), sigma_from_t(t_n)
        )  # x_t = (1-s) x0 + s eps
        kwargs = self.forward_kwargs(x0)
        x_next = self.teacher_step(x_t, t_n, t_next, cond, kwargs)
        student = self.student_x0(x_t, t_n, cond.context, kwargs)
        target = self.target_x0(x_next, t_next, cond.context, kwargs)
        loss = consistency_loss(student, target, huber_c=self.p.get("huber_c"))
        return {"loss": loss, "t_n": t_n.float().mean()}

    # ------------------------------------------------------------------ the EMA target
    def update_target(self, step: int) -> None:
        """EMA target: theta_ema <- decay theta_ema + (1 - decay) theta from `ema_start`, a copy before."""
        ema_update(self.generator_ema, self.generator, float(self.p.ema_decay), step=step,
                   start_step=int(self.p.ema_start))  # fmt: skip

    def optimizer_step(
        self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None
    ) -> None:
        """The student's step, then the EMA target's update (optimizer steps only, so accumulation-safe)."""
        step = int(self.global_step)  # index of this optimizer step
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        self.update_target(step)

    # ------------------------------------------------------------------ sampling
    def sampler_settings(self) -> dict[str, Any]:
        """Few-step (multistep consistency) sampling on the 4-step grid, no guidance."""
        return self.few_step_settings()
