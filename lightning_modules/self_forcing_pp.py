"""Self-Forcing++ (REFERENCE §3): long-horizon Self Forcing. The student learns from windows of its
own long rollouts, made with the rolling KV cache it uses at inference, corrected by a teacher that
only knows short clips. No public code exists; this is the reference implementation.

Stage ``dmd`` (extended DMD, eq. 2), per training batch:
1. the rollout length N (optionally growing linearly over training), a block-aligned window start
   i (uniform, or Beta(1, 2) biased to early windows) and the exit steps (last by default): drawn
   from rank-independent generators, identical on every rank;
2. roll the student out to frame i with a rolling KV cache of `local_window` (= M, the teacher
   horizon) frames, exactly as at inference (no sink, no first-frame masking), under no_grad;
3. backward noise initialisation: re-noise the window's K = M frames and denoise them again with
   the student against the cache the rollout left (the window is conditioned on the long history),
   with grad only at each window block's exit step (`forcing.rollout_long.window_rollout`);
4. Self Forcing's update on the window (inherited): the objective's generator loss with the
   short-horizon real score and the critic every `ratio`-th iteration, the critic's loss on the
   detached window every iteration, EMA.

Stage ``grpo`` (appendix A.6, eq. 7): G rollouts per prompt with the stochastic few-step sampler,
reward = optical-flow smoothness of the decoded video (`forcing.reward`), group-normalised
advantages, and PPO's clipped ratio objective over the per-step Gaussian log-probabilities,
optionally regularised by the closed-form KL to the frozen initial policy (`grpo.kl_weight`).
The generator starts from `generator_init` (at scale: a Self Forcing or SF++ DMD checkpoint).
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from forcing.ema import ema_update
from forcing.errors import ConfigError
from forcing.models import CausalWanModel
from forcing.objectives.grpo import REDUCTIONS, clip_fraction, group_advantages, grpo_loss
from forcing.reward import REWARDS, flow_smoothness_reward
from forcing.rollout_long import (
    BACKWARD_NOISE,
    WINDOW_SAMPLING,
    Trajectory,
    WindowRollout,
    drawn_noise,
    policy_logprobs,
    rollout_frames_at,
    sample_trajectory,
    sample_window_start,
    window_rollout,
)
from forcing.schedule_updates import update_plan
from lightning_modules.base import ForcingModule, build_backbone
from lightning_modules.self_forcing import SelfForcing

STAGES = ("dmd", "grpo")


class SelfForcingPP(SelfForcing):
    """Self-Forcing++: long rollouts, rolling KV in training, windows, backward noise, GRPO."""

    objectives: ClassVar[tuple[str, ...]] = ("dmd", "sid", "gan")

    @classmethod
    def optimizer_steps(cls, cfg: DictConfig, iterations: int) -> int:
        """DMD: Self Forcing's count; GRPO: `grpo.updates_per_batch` generator steps per iteration."""
        if cfg.paradigm.stage != "grpo":
            return super().optimizer_steps(cfg, iterations)
        return iterations if iterations < 0 else iterations * int(cfg.paradigm.grpo.updates_per_batch)

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        self.reference_net: CausalWanModel | None = None
        self.last_window: tuple[int, int] = (0, 0)  # (N, window start) of the latest rollout

    # ------------------------------------------------------------------ config
    @classmethod
    def validate_config(cls, cfg: DictConfig) -> None:
        """Self Forcing's checks plus the rollout length, window, backward noise and GRPO options."""
        super().validate_config(cfg)
        p, horizon, fpb = cfg.paradigm, int(cfg.world.num_frames), int(cfg.paradigm.frames_per_block)
        choices = {"stage": STAGES, "window_sampling": WINDOW_SAMPLING, "backward_noise": BACKWARD_NOISE,
                   "rollout": ("self",)}
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
        if p.stage == "grpo":
            cls._validate_grpo(cfg)

    @classmethod
    def _validate_grpo(cls, cfg: DictConfig) -> None:
        g, fpb = cfg.paradigm.grpo, int(cfg.paradigm.frames_per_block)
        if int(g.group_size) < 2:
            raise ConfigError(f"paradigm.grpo.group_size={g.group_size} must be >= 2 (advantages are per group)")
        if len(cfg.paradigm.denoising_steps) < 2:
            raise ConfigError("GRPO needs a stochastic sampler: paradigm.denoising_steps needs >= 2 steps")
        if float(g.clip_eps) <= 0 or float(g.kl_weight) < 0 or int(g.updates_per_batch) < 1:
            raise ConfigError("paradigm.grpo needs clip_eps > 0, kl_weight >= 0 and updates_per_batch >= 1")
        if g.logprob_reduce not in REDUCTIONS or g.reward not in REWARDS:
            raise ConfigError(f"paradigm.grpo.logprob_reduce in {REDUCTIONS}, paradigm.grpo.reward in {REWARDS}")
        if int(g.updates_per_batch) > 1 and int(cfg.trainer.accumulate_grad_batches) > 1:
            raise ConfigError("paradigm.grpo.updates_per_batch > 1 cannot be combined with gradient accumulation")
        frames = g.get("rollout_frames")
        if frames is not None and (int(frames) % fpb or int(frames) < 4):
            raise ConfigError(f"paradigm.grpo.rollout_frames={frames} must be a multiple of {fpb} and >= 4")

    # ------------------------------------------------------------------ networks
    def build_networks(self) -> None:
        """DMD: Self Forcing's networks. GRPO: the generator and, with a KL weight, a frozen copy of
        it as the reference policy (no real score, no critic)."""
        if self.p.stage != "grpo":
            super().build_networks()
            return
        path = self.p.generator_init.get("path") or self.cfg.teacher.get("path")
        overrides = OmegaConf.to_container(self.cfg.model.overrides, resolve=True)
        self.generator = (build_backbone(self.cfg.model) if path is None
                          else CausalWanModel.from_pretrained(path, preset=self.cfg.model.preset, **overrides))
        if float(self.p.grpo.kl_weight) > 0:
            self.reference_net = copy.deepcopy(self.generator).requires_grad_(False).eval()

    def configure_model(self) -> None:
        """DMD: Self Forcing's; GRPO: the shared build and sharding only (no objective heads)."""
        if self.p.stage != "grpo":
            super().configure_model()
        elif self.generator is None:
            ForcingModule.configure_model(self)

    def backbones(self) -> list[CausalWanModel]:
        """Every network this stage built (GRPO has no real score or critic)."""
        nets = (*ForcingModule.backbones(self), self.real_score_net, self.critic_net, self.reference_net)
        return [n for n in nets if n is not None]

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """DMD: generator and critic (Self Forcing); GRPO: the generator's AdamW only."""
        if self.p.stage != "grpo":
            return super().configure_optimizers()
        o = self.cfg.optim
        return [torch.optim.AdamW([p for p in self.generator.parameters() if p.requires_grad], lr=float(o.lr),
                                  betas=tuple(o.betas), weight_decay=float(o.weight_decay), eps=float(o.eps))]

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

    def rollout(self, batch: dict[str, Any], context: Tensor, real: Tensor | None, rngs: list) -> WindowRollout:
        """The window (K = M frames, grad at its exit steps) of an N-frame rollout (eq. 2)."""
        fpb, horizon = int(self.p.frames_per_block), int(self.cfg.world.num_frames)
        frames = self.rollout_frames()
        start = sample_window_start(frames, horizon, fpb, str(self.p.window_sampling), self.rng(salt=7))
        roll = window_rollout(
            self.generator, context, self.block_noise(rngs),
            num_frames=frames, window_start=start, window_frames=horizon, frames_per_block=fpb,
            timesteps=self.grid(), exit_steps=self.draw_exit_steps(horizon // fpb),
            cache_frames=self.cache_frames(), backward_noise=str(self.p.backward_noise),
            context_t=float(self.p.context_t), generator=self.rng(salt=4), backward_generator=self.rng(salt=8),
        )
        self.last_window = (frames, start)
        return roll

    # ------------------------------------------------------------------ the step
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """DMD: Self Forcing's step on the window (+ `train/rollout_frames`, `train/window_start`);
        GRPO: `grpo_step`."""
        if self.p.stage == "grpo":
            return self.grpo_step(batch)
        loss = super().training_step(batch, batch_idx)
        frames, start = self.last_window
        self.log("train/rollout_frames", float(frames), batch_size=1)
        self.log("train/window_start", float(start), batch_size=1)
        return loss

    # ------------------------------------------------------------------ GRPO (A.6, eq. 7)
    def sample_group(self, context: Tensor, rngs: list[torch.Generator]) -> Trajectory:
        """The sampling policy's rollouts (no grad), states and log-probs kept on CPU."""
        frames = self.p.grpo.get("rollout_frames")
        return sample_trajectory(
            self.generator, context, self.block_noise(rngs),
            num_frames=int(frames) if frames is not None else int(self.p.rollout_frames),
            frames_per_block=int(self.p.frames_per_block), timesteps=self.grid(), cache_frames=self.cache_frames(),
            context_t=float(self.p.context_t), generator=self.rng(salt=4), reduce=str(self.p.grpo.logprob_reduce),
            store="cpu",
        )

    def reward(self, latents: Tensor) -> Tensor:
        """Optical-flow smoothness of the decoded videos: [B] float64 on CPU."""
        flow = OmegaConf.to_container(self.p.grpo.flow, resolve=True)
        return flow_smoothness_reward(self.decode_video(latents.to(self.device)), kind=str(self.p.grpo.reward), **flow)

    def grpo_update(self, context: Tensor, traj: Trajectory, advantages: Tensor, scale: float) -> dict[str, Tensor]:
        """Backpropagate the clipped objective (+ beta KL) block by block; returns the totals."""
        g = self.p.grpo
        clip, beta = float(g.clip_eps), float(g.kl_weight)
        count = traj.logp_old.numel()  # every stochastic step of every sample
        totals = {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "log_ratio": 0.0}
        reference = self.reference_net if beta > 0 else None
        for part in policy_logprobs(self.generator, context, traj, cache_frames=self.cache_frames(),
                                    context_t=float(self.p.context_t), reduce=str(g.logprob_reduce),
                                    reference=reference):
            old = traj.logp_old[:, part.block].to(part.logp.device)
            loss = grpo_loss(part.logp, old, advantages, clip, reduction="sum") / count  # eq. 7
            if part.kl is not None:
                loss = loss + beta * part.kl.sum() / count
                totals["kl"] += float(part.kl.detach().sum()) / count
            self.manual_backward(loss * scale)
            share = old.numel() / count
            totals["loss"] += float(loss.detach())
            totals["clip_fraction"] += float(clip_fraction(part.logp, old, clip)) * share
            totals["log_ratio"] += float((part.logp.detach() - old).mean()) * share
        return {k: torch.tensor(v) for k, v in totals.items()}

    def grpo_step(self, batch: dict[str, Any]) -> Tensor:
        """G rollouts per prompt, rewards, group advantages, `updates_per_batch` clipped updates."""
        g = self.p.grpo
        size, accumulate = int(g.group_size), int(self.cfg.trainer.accumulate_grad_batches)
        plan = update_plan(self.step_index(), 1, accumulate)
        seeds = [int(s) for s in batch["seed"].tolist()]
        prompts = [p for p in batch["prompt"] for _ in range(size)]
        rngs = [self.rng(salt=0, key=seed * size + i) for seed in seeds for i in range(size)]
        cond = self.condition(prompts)
        traj = self.sample_group(cond.context, rngs)
        rewards = self.reward(traj.video)
        advantages = group_advantages(rewards, size).to(self.device)
        opts = self.optimizers()
        opt = opts[0] if isinstance(opts, list) else opts
        terms: dict[str, Tensor] = {}
        for _ in range(int(g.updates_per_batch)):
            terms = self.grpo_update(cond.context, traj, advantages, scale=1.0 / accumulate)
            if plan.critic_step:  # the iteration's last batch
                self.step_optimizer(opt, self.generator.parameters(), "generator")
                if self.generator_ema is not None:
                    ema_update(self.generator_ema, self.generator, float(self.p.ema_decay),
                               step=plan.iteration, start_step=int(self.p.ema_start))
        terms.update(reward=rewards.mean(), reward_std=rewards.std(unbiased=False),
                     rollout_frames=torch.tensor(float(traj.video.shape[2])))
        self.log_train(terms, batch_size=len(prompts))
        return terms["loss"]

    # ------------------------------------------------------------------ evaluation and sampling
    def loss_terms(self, batch: dict[str, Any], rngs: list) -> dict[str, Tensor]:
        """`val/loss`: DMD: Self Forcing's (on a window); GRPO: minus the mean reward of one rollout per prompt."""
        if self.p.stage != "grpo":
            return super().loss_terms(batch, rngs)
        cond = self.condition(batch["prompt"])
        traj = self.sample_group(cond.context, rngs)
        return {"loss": -self.reward(traj.video).mean().float()}

    def sample(self, prompts: list[str], num_frames: int, seed: int = 0) -> Tensor:
        """Inference as in training: the rolling cache of `cache_frames()` frames, any length."""
        return self.stream(prompts, num_frames, seed, cache_frames=self.cache_frames())
