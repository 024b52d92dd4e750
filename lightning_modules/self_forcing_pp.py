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

Stage ``grpo`` (appendix A.6, eq. 7): G rollouts per prompt with the stochastic few-step sampler,
reward = optical-flow smoothness of the decoded video (`forcing.reward`), group-normalised
advantages, and PPO's clipped ratio objective with one ratio per trajectory (its log-probability is
the sum of the per-step Gaussian log-probabilities), optionally regularised by the trajectory's
closed-form KL to the frozen initial policy (`grpo.kl_weight`; Flow-GRPO's Gaussian-step KL).
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
from forcing.objectives.grpo import (
    REDUCTIONS,
    clip_fraction,
    group_advantages,
    grpo_logprob_weights,
    grpo_loss,
    trajectory_logprob,
)
from forcing.reward import REWARDS, flow_smoothness_reward
from forcing.rollout import (
    BACKWARD_NOISE,
    WINDOW_SAMPLING,
    Trajectory,
    WindowRollout,
    drawn_noise,
    policy_logprobs,
    rollout_frames_at,
    sample_trajectory,
    sample_window_start,
    sliced_noise,
    stream_rollout,
    window_rollout,
)
from forcing.schedule_updates import update_plan
from lightning_modules.base import ForcingModule, build_backbone
from lightning_modules.self_forcing import SelfForcing

STAGES = ("dmd", "grpo")
#: clean: finished blocks re-run at context_t write clean K/V (Alg. 1/2) | noisy: the cache keeps
#: each block's last noisy K/V (the noisy-KV-cache ablation)
CONTEXT_CACHES = ("clean", "noisy")


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
        self.last_window: tuple[int, int, int] = (0, 0, 0)  # (N, window start, noise step) of the latest rollout

    # ------------------------------------------------------------------ config
    @classmethod
    def validate_config(cls, cfg: DictConfig) -> None:
        """Self Forcing's checks plus the rollout length, window, backward noise and GRPO options."""
        super().validate_config(cfg)
        p, horizon, fpb = cfg.paradigm, int(cfg.world.num_frames), int(cfg.paradigm.frames_per_block)
        choices = {"stage": STAGES, "window_sampling": WINDOW_SAMPLING, "backward_noise": BACKWARD_NOISE,
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
        if p.stage == "grpo" and p.context_cache != "clean":
            raise ConfigError("paradigm.context_cache=noisy is an extended-DMD ablation: the GRPO stage needs clean")
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

    # ------------------------------------------------------------------ the step
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """DMD: Self Forcing's step on the window (+ `train/rollout_frames`, `train/window_start`,
        `train/backward_noise_t`); GRPO: `grpo_step`."""
        if self.p.stage == "grpo":
            return self.grpo_step(batch)
        loss = super().training_step(batch, batch_idx)
        frames, start, noise_step = self.last_window
        self.log("train/rollout_frames", float(frames), batch_size=1)
        self.log("train/window_start", float(start), batch_size=1)
        self.log("train/backward_noise_t", float(self.grid()[noise_step]), batch_size=1)
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

    def grpo_update(self, context: Tensor, traj: Trajectory, advantages: Tensor, scale: float,
                    fresh: bool = False) -> dict[str, Tensor]:
        """Backpropagate eq. 7 (+ beta KL) block by block; returns the totals.

        One PPO ratio per trajectory, r = exp(sum over its steps of log pi_theta - log pi_old), so
        every block's log-probability is needed before any block's gradient: a no-grad replay gives
        them (skipped when `fresh`: the policy is still the sampling one, r = 1), their weights
        d loss / d log pi(tau) (`grpo_logprob_weights`) then scale the grad replay, block by block.
        """
        g = self.p.grpo
        clip, beta, batch = float(g.clip_eps), float(g.kl_weight), advantages.numel()
        old = trajectory_logprob(traj.logp_old).to(self.device)  # log pi_old(tau) = sum over its steps
        kw = {"cache_frames": self.cache_frames(), "context_t": float(self.p.context_t),
              "reduce": str(g.logprob_reduce)}
        if fresh:
            new = old
        else:
            with torch.no_grad():
                new = torch.stack([part.logp for part in policy_logprobs(self.generator, context, traj, **kw)], 1)
        weights = grpo_logprob_weights(new, old, advantages, clip)  # d loss / d log pi_theta(tau)
        replay, kl_total = [], 0.0
        reference = self.reference_net if beta > 0 else None
        for part in policy_logprobs(self.generator, context, traj, reference=reference, **kw):
            loss = (weights * part.logp.sum(1)).sum()  # eq. 7's gradient through this block's steps
            if part.kl is not None:  # KL of the trajectory: sum over its steps, mean over trajectories
                kl = part.kl.sum() / batch
                loss = loss + beta * kl
                kl_total += float(kl.detach())
            self.manual_backward(loss * scale)
            replay.append(part.logp.detach())
        current = trajectory_logprob(torch.stack(replay, 1))
        objective = float(grpo_loss(new, old, advantages, clip))
        return {"loss": torch.tensor(objective + beta * kl_total), "kl": torch.tensor(kl_total),
                "clip_fraction": clip_fraction(current, old, clip).float(),
                "log_ratio": (current - old).mean().float()}

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
        for update in range(int(g.updates_per_batch)):
            terms = self.grpo_update(cond.context, traj, advantages, scale=1.0 / accumulate, fresh=update == 0)
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
        settings = self.sampler_settings()
        return stream_rollout(
            self.sampling_generator(), self.condition(prompts), sliced_noise(noise), num_frames=num_frames,
            frames_per_block=int(settings["frames_per_block"]), timesteps=settings["timesteps"],
            cache_frames=cache_frames or num_frames, guidance_scale=float(settings["guidance_scale"]),
            context_t=float(self.p.context_t), noisy_context=True, generator=gen, on_block=on_block,
        )
