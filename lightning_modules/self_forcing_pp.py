"""Self-Forcing++ (REFERENCE §3): long-horizon Self Forcing. The student learns from windows of its
own long rollouts, made with the rolling KV cache it uses at inference, corrected by a teacher that
only knows short clips. No public code exists; this is the reference implementation.

Stage ``dmd`` (extended DMD, eq. 2), per training batch:
1. the rollout length N (optionally growing linearly over training), a block-aligned window start
   i (uniform, or Beta(1, 2) biased to early windows), the exit steps (last by default) and the
   backward-noise step: drawn from rank-independent generators, identical on every rank;
2. roll the student out to frame i with a rolling KV cache of `local_window` (= M, the teacher
   horizon) frames, exactly as at inference (no sink, no first-frame masking), under no_grad;
3. backward noise initialisation (eq. 1, Alg. 1 line 4): a grid point t_j drawn on its own
   (uniform over the few-step grid, independent of the exit step; `backward_noise: first` keeps
   t_0), the window's K = M clean frames re-noised to t_j and denoised again from there by the
   student against the cache the rollout left (the window is conditioned on the long history),
   with grad only at each window block's exit step (`forcing.rollout.window_rollout`);
   `context_cache: noisy` is the ablation whose cache keeps each block's noisy K/V (no clean
   re-run), in training and at inference (`stream`);
4. Self Forcing's update on the window (inherited): the objective's generator loss with the
   short-horizon real score and the critic every `ratio`-th iteration, the critic's loss on the
   detached window every iteration, EMA.

Stage ``grpo`` (appendix A.6, eq. 7): group rollouts, a smoothness reward and PPO's clipped
objective (`lightning_modules.sfpp_grpo.GRPOStage`). The generator starts from `generator_init`
(at scale: a Self Forcing or SF++ DMD checkpoint).

What differs between the stages (networks, optimisers, the step, `val/loss`, the step count and
config checks) lives in a `Stage` object chosen once from `paradigm.stage` (`STAGES`); the module
delegates to it and never branches on the stage.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from omegaconf import DictConfig
from torch import Tensor

from forcing.errors import ConfigError
from forcing.models import CausalWanModel
from forcing.rollout import (
    BACKWARD_NOISE,
    WINDOW_SAMPLING,
    WindowRollout,
    drawn_noise,
    rollout_frames_at,
    sample_window_start,
    sliced_noise,
    stream_rollout,
    window_rollout,
)
from lightning_modules.base import ForcingModule
from lightning_modules.self_forcing import SelfForcing
from lightning_modules.sfpp_grpo import GRPOStage
from lightning_modules.sfpp_stage import DMDStage, Stage

#: `paradigm.stage` -> the strategy holding what differs between the stages
STAGES: dict[str, type[Stage]] = {"dmd": DMDStage, "grpo": GRPOStage}
#: clean: finished blocks re-run at context_t write clean K/V (Alg. 1/2) | noisy: the cache keeps
#: each block's last noisy K/V (the noisy-KV-cache ablation)
CONTEXT_CACHES = ("clean", "noisy")


class SelfForcingPP(SelfForcing):
    """Self-Forcing++: long rollouts, rolling KV in training, windows, backward noise, GRPO."""

    objectives: ClassVar[tuple[str, ...]] = ("dmd", "sid", "gan")

    @classmethod
    def optimizer_steps(cls, cfg: DictConfig, iterations: int) -> int:
        """The stage's count (`Stage.optimizer_steps`)."""
        return STAGES[cfg.paradigm.stage].optimizer_steps(cfg, iterations)

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        self.reference_net: CausalWanModel | None = None
        self.last_window: tuple[int, int, int] = (0, 0, 0)  # (N, window start, noise step) of the latest rollout
        self.stage: Stage = STAGES[self.p.stage](self)

    # ------------------------------------------------------------------ config
    @classmethod
    def validate_config(cls, cfg: DictConfig) -> None:
        """Self Forcing's checks plus the rollout length, window and backward noise, then the stage's."""
        super().validate_config(cfg)
        p, horizon, fpb = cfg.paradigm, int(cfg.world.num_frames), int(cfg.paradigm.frames_per_block)
        choices = {"stage": tuple(STAGES), "window_sampling": WINDOW_SAMPLING, "backward_noise": BACKWARD_NOISE,
                   "rollout": ("self",), "context_cache": CONTEXT_CACHES}
        for key, allowed in choices.items():
            if p[key] not in allowed:
                raise ConfigError(f"paradigm.{key}={p[key]!r} is not one of {', '.join(allowed)}")
        frames = int(p.rollout_frames)
        if frames < horizon or frames % fpb:
            raise ConfigError(f"paradigm.rollout_frames={frames} must be >= world.num_frames={horizon} "
                              f"and a multiple of frames_per_block={fpb}")
        first = p.get("rollout_frames_start")
        if first is not None and not horizon <= int(first) <= frames:
            raise ConfigError(f"paradigm.rollout_frames_start={first} is not in [{horizon}, {frames}]")
        if int(p.rollout_schedule_steps) < 0:
            raise ConfigError("paradigm.rollout_schedule_steps must be >= 0")
        STAGES[p.stage].validate_config(cfg)

    # ------------------------------------------------------------------ the stage's parts
    def build_networks(self) -> None:
        """The stage's networks (DMD: Self Forcing's; GRPO: the generator and its reference copy)."""
        self.stage.build_networks()

    def configure_model(self) -> None:
        """The stage's build and sharding."""
        self.stage.configure_model()

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """The stage's optimisers (DMD: generator and critic; GRPO: the generator's)."""
        return self.stage.configure_optimizers()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """The stage's step (DMD: Self Forcing's on the window; GRPO: group rollouts and clipped updates)."""
        return self.stage.training_step(batch, batch_idx)

    def loss_terms(self, batch: dict[str, Any], rngs: list) -> dict[str, Tensor]:
        """The stage's `val/loss` (DMD: the objective's generator loss; GRPO: minus the mean reward)."""
        return self.stage.loss_terms(batch, rngs)

    def backbones(self) -> list[CausalWanModel]:
        """Every network this stage built (GRPO has no real score or critic)."""
        nets = (*ForcingModule.backbones(self), self.real_score_net, self.critic_net, self.reference_net)
        return [n for n in nets if n is not None]

    # ------------------------------------------------------------------ the long rollout
    def cache_frames(self) -> int:
        """Rolling KV cache in frames, in training and at inference: `local_window`, else M."""
        window = self.p.get("local_window")
        return int(window) if window is not None else int(self.cfg.world.num_frames)

    def rollout_frames(self) -> int:
        """N at this iteration (linear schedule from `rollout_frames_start` when set)."""
        iteration = self.step_index() // int(self.cfg.trainer.accumulate_grad_batches)
        start = self.p.get("rollout_frames_start")
        return rollout_frames_at(
            iteration, int(self.p.rollout_frames), start=int(start) if start is not None else None,
            steps=int(self.p.rollout_schedule_steps), frames_per_block=int(self.p.frames_per_block),
            min_frames=int(self.cfg.world.num_frames),
        )

    def block_noise(self, rngs: list[torch.Generator]) -> Any:
        """Per-block noise drawn from the per-clip generators (nothing pre-allocated for N frames)."""
        c, _, h, w = self.latent_shape(1)
        return drawn_noise(rngs, (c, h, w))

    def noisy_context(self) -> bool:
        """True for the noisy-KV-cache ablation (`context_cache: noisy`)."""
        return str(self.p.get("context_cache", "clean")) == "noisy"

    def draw_noise_step(self) -> int:
        """Eq. 1 / Alg. 1 line 4: the grid index j of the backward-noise level t_j ~ U{t_1..t_T},
        its own draw (salt 9, not the exit step's), rank-independent and broadcast from rank 0 like
        the exit steps; `backward_noise: first` always re-noises to t_0."""
        if self.p.backward_noise == "first":
            return 0
        steps = len(self.p.denoising_steps)
        j = int(torch.randint(0, steps, (1,), generator=self.rng(salt=9), device=self.device))
        return int(self.trainer.strategy.broadcast(j, src=0)) if self._trainer is not None else j

    def rollout(self, batch: dict[str, Any], context: Tensor, real: Tensor | None, rngs: list) -> WindowRollout:
        """The window (K = M frames, grad at its exit steps) of an N-frame rollout (eq. 2)."""
        fpb, horizon = int(self.p.frames_per_block), int(self.cfg.world.num_frames)
        frames = self.rollout_frames()
        start = sample_window_start(frames, horizon, fpb, str(self.p.window_sampling), self.rng(salt=7))
        roll = window_rollout(
            self.generator, context, self.block_noise(rngs),
            num_frames=frames, window_start=start, window_frames=horizon, frames_per_block=fpb,
            timesteps=self.grid(), exit_steps=self.draw_exit_steps(horizon // fpb),
            cache_frames=self.cache_frames(), noise_step=self.draw_noise_step(),
            context_t=float(self.p.context_t), noisy_context=self.noisy_context(),
            generator=self.rng(salt=4), backward_generator=self.rng(salt=8),
        )
        self.last_window = (frames, start, roll.noise_step)
        return roll

    # ------------------------------------------------------------------ sampling
    def sample(self, prompts: list[str], num_frames: int, seed: int = 0) -> Tensor:
        """Inference as in training: the rolling cache of `cache_frames()` frames, any length."""
        return self.stream(prompts, num_frames, seed, cache_frames=self.cache_frames())

    @torch.no_grad()
    def stream(self, prompts: list[str], num_frames: int, seed: int = 0, cache_frames: int | None = None,
               sink_frames: int = 0, on_block: Any = None) -> Tensor:
        """`ForcingModule.stream`; with `context_cache: noisy` the same draws through
        `stream_rollout`, whose cache keeps each block's noisy K/V as in training."""
        if not self.noisy_context():
            return super().stream(prompts, num_frames, seed, cache_frames, sink_frames, on_block)
        if sink_frames:
            raise ConfigError("the noisy-KV-cache ablation streams without sink frames")
        gen = torch.Generator(device=self.device).manual_seed(seed)
        noise = torch.randn((len(prompts), *self.latent_shape(num_frames)), generator=gen, device=self.device)
        return stream_rollout(
            self.sampling_generator(), self.condition(prompts), sliced_noise(noise), num_frames=num_frames,
            cache_frames=cache_frames or num_frames, context_t=float(self.p.context_t), noisy_context=True,
            generator=gen, on_block=on_block, **self.sampler_settings().stream_kwargs(),
        )
