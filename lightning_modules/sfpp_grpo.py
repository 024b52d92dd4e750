"""The GRPO stage of Self-Forcing++ (appendix A.6, eq. 7): G rollouts per prompt with the stochastic
few-step sampler, reward = optical-flow smoothness of the decoded video (`forcing.reward`),
group-normalised advantages, and PPO's clipped ratio objective with one ratio per trajectory (its
log-probability is the sum of the per-step Gaussian log-probabilities), optionally regularised by
the trajectory's closed-form KL to the frozen initial policy (`grpo.kl_weight`; Flow-GRPO's
Gaussian-step KL). No real score, no critic: the generator's AdamW only."""

from __future__ import annotations

import copy
from typing import Any

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
from forcing.rollout import Trajectory, policy_logprobs, sample_trajectory
from forcing.schedule_updates import update_plan
from lightning_modules.base import ForcingModule, build_backbone
from lightning_modules.sfpp_stage import Stage


class GRPOStage(Stage):
    """GRPO on the module's generator, with a frozen copy as the reference policy when `grpo.kl_weight > 0`."""

    @classmethod
    def validate_config(cls, cfg: DictConfig) -> None:
        """Group size, a stochastic sampler, clip / KL / update counts, reduction and reward, length."""
        g, fpb = cfg.paradigm.grpo, int(cfg.paradigm.frames_per_block)
        if cfg.paradigm.context_cache != "clean":
            raise ConfigError("paradigm.context_cache=noisy is an extended-DMD ablation: the GRPO stage needs clean")
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

    @classmethod
    def optimizer_steps(cls, cfg: DictConfig, iterations: int) -> int:
        """`grpo.updates_per_batch` generator steps per iteration."""
        return iterations if iterations < 0 else iterations * int(cfg.paradigm.grpo.updates_per_batch)

    def build_networks(self) -> None:
        """The generator and, with a KL weight, a frozen copy of it as the reference policy."""
        m = self.module
        path = m.p.generator_init.get("path") or m.cfg.teacher.get("path")
        overrides = OmegaConf.to_container(m.cfg.model.overrides, resolve=True)
        m.generator = (build_backbone(m.cfg.model) if path is None
                       else CausalWanModel.from_pretrained(path, preset=m.cfg.model.preset, **overrides))
        if float(m.p.grpo.kl_weight) > 0:
            m.reference_net = copy.deepcopy(m.generator).requires_grad_(False).eval()

    def configure_model(self) -> None:
        """The shared build and sharding only (no objective heads)."""
        if self.module.generator is None:
            ForcingModule.configure_model(self.module)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """The generator's AdamW only."""
        m, o = self.module, self.module.cfg.optim
        return [torch.optim.AdamW([p for p in m.generator.parameters() if p.requires_grad], lr=float(o.lr),
                                  betas=tuple(o.betas), weight_decay=float(o.weight_decay), eps=float(o.eps))]

    def sample_group(self, context: Tensor, rngs: list[torch.Generator]) -> Trajectory:
        """The sampling policy's rollouts (no grad), states and log-probs kept on CPU."""
        m = self.module
        frames = m.p.grpo.get("rollout_frames")
        return sample_trajectory(
            m.generator, context, m.block_noise(rngs),
            num_frames=int(frames) if frames is not None else int(m.p.rollout_frames),
            frames_per_block=int(m.p.frames_per_block), timesteps=m.grid(), cache_frames=m.cache_frames(),
            context_t=float(m.p.context_t), generator=m.rng(salt=4), reduce=str(m.p.grpo.logprob_reduce),
            store="cpu",
        )

    def reward(self, latents: Tensor) -> Tensor:
        """Optical-flow smoothness of the decoded videos: [B] float64 on CPU."""
        m = self.module
        flow = OmegaConf.to_container(m.p.grpo.flow, resolve=True)
        return flow_smoothness_reward(m.decode_video(latents.to(m.device)), kind=str(m.p.grpo.reward), **flow)

    def grpo_update(self, context: Tensor, traj: Trajectory, advantages: Tensor, scale: float,
                    fresh: bool = False) -> dict[str, Tensor]:
        """Backpropagate eq. 7 (+ beta KL) block by block; returns the totals.

        One PPO ratio per trajectory, r = exp(sum over its steps of log pi_theta - log pi_old), so
        every block's log-probability is needed before any block's gradient: a no-grad replay gives
        them (skipped when `fresh`: the policy is still the sampling one, r = 1), their weights
        d loss / d log pi(tau) (`grpo_logprob_weights`) then scale the grad replay, block by block.
        """
        m, g = self.module, self.module.p.grpo
        clip, beta, batch = float(g.clip_eps), float(g.kl_weight), advantages.numel()
        old = trajectory_logprob(traj.logp_old).to(m.device)  # log pi_old(tau) = sum over its steps
        kw = {"cache_frames": m.cache_frames(), "context_t": float(m.p.context_t), "reduce": str(g.logprob_reduce)}
        if fresh:
            new = old
        else:
            with torch.no_grad():
                new = torch.stack([part.logp for part in policy_logprobs(m.generator, context, traj, **kw)], 1)
        weights = grpo_logprob_weights(new, old, advantages, clip)  # d loss / d log pi_theta(tau)
        replay, kl_total = [], 0.0
        reference = m.reference_net if beta > 0 else None
        for part in policy_logprobs(m.generator, context, traj, reference=reference, **kw):
            loss = (weights * part.logp.sum(1)).sum()  # eq. 7's gradient through this block's steps
            if part.kl is not None:  # KL of the trajectory: sum over its steps, mean over trajectories
                kl = part.kl.sum() / batch
                loss = loss + beta * kl
                kl_total += float(kl.detach())
            m.manual_backward(loss * scale)
            replay.append(part.logp.detach())
        current = trajectory_logprob(torch.stack(replay, 1))
        objective = float(grpo_loss(new, old, advantages, clip))
        return {"loss": torch.tensor(objective + beta * kl_total), "kl": torch.tensor(kl_total),
                "clip_fraction": clip_fraction(current, old, clip).float(),
                "log_ratio": (current - old).mean().float()}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """G rollouts per prompt, rewards, group advantages, `updates_per_batch` clipped updates."""
        m, g = self.module, self.module.p.grpo
        size, accumulate = int(g.group_size), int(m.cfg.trainer.accumulate_grad_batches)
        plan = update_plan(m.step_index(), 1, accumulate)
        seeds = [int(s) for s in batch["seed"].tolist()]
        prompts = [p for p in batch["prompt"] for _ in range(size)]
        rngs = [m.rng(salt=0, key=seed * size + i) for seed in seeds for i in range(size)]
        cond = m.condition(prompts)
        traj = self.sample_group(cond.context, rngs)
        rewards = self.reward(traj.video)
        advantages = group_advantages(rewards, size).to(m.device)
        opts = m.optimizers()
        opt = opts[0] if isinstance(opts, list) else opts
        terms: dict[str, Tensor] = {}
        for update in range(int(g.updates_per_batch)):
            terms = self.grpo_update(cond.context, traj, advantages, scale=1.0 / accumulate, fresh=update == 0)
            if plan.critic_step:  # the iteration's last batch
                m.step_optimizer(opt, m.generator.parameters(), "generator")
                if m.generator_ema is not None:
                    ema_update(m.generator_ema, m.generator, float(m.p.ema_decay),
                               step=plan.iteration, start_step=int(m.p.ema_start))
        terms.update(reward=rewards.mean(), reward_std=rewards.std(unbiased=False),
                     rollout_frames=torch.tensor(float(traj.video.shape[2])))
        m.log_train(terms, batch_size=len(prompts))
        return terms["loss"]

    def loss_terms(self, batch: dict[str, Any], rngs: list) -> dict[str, Tensor]:
        """`val/loss`: minus the mean reward of one rollout per prompt."""
        cond = self.module.condition(batch["prompt"])
        traj = self.sample_group(cond.context, rngs)
        return {"loss": -self.reward(traj.video).mean().float()}
