"""Self Forcing (Huang et al. 2025), Algorithm 1, with the TF+DMD and DF+DMD (CausVid)
baselines as rollout modes, and any distribution-matching objective (DMD, SiD, GAN).

Per training batch:
1. draw the exit step s once (shared by every block by default; identical on every rank);
2. roll the causal generator out block by block with the KV cache (no grad before s, grad at s,
   no-grad re-run at the context timestep to write the block's clean K/V);
3. every `ratio`-th iteration: the objective's generator loss on the whole video, a generator
   step, and the EMA update;
4. every iteration: the objective's critic loss on a video of its own, a fresh no-grad rollout
   drawn after the generator step (Alg. 1 and the public code: the critic update runs the
   generator again), and a critic step. `paradigm.critic_reuses_rollout: true` lets the critic
   reuse the generator step's (detached) video instead: one rollout less per generator iteration.
The real score (frozen, bidirectional, with CFG) and the critic (initialised from its weights) are
the objective's inputs, both the teacher's weights unless `paradigm.real_score.path` /
`paradigm.critic.path` give others; the generator starts from ODE-initialised weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor, nn

from forcing.diffusion import Denoiser
from forcing.diffusion.schedule import few_step_timesteps
from forcing.ema import ema_update
from forcing.errors import ConfigError
from forcing.models import CausalWanModel
from forcing.objectives import DistributionMatching, LossInputs, critic_parameters
from forcing.parallel import shard_module
from forcing.rollout import Rollout, diffusion_forcing, self_forcing
from forcing.schedule_updates import generator_steps, update_plan
from lightning_modules.base import ForcingModule, build_backbone

ROLLOUTS = ("self", "teacher_forcing", "diffusion_forcing")
#: symbolic `paradigm.train_window`: num_frames - frames_per_block (Self Forcing §3.4)
EXCLUDE_FIRST_BLOCK = "exclude_first_block"
#: salt offset of the critic's own rollout (`SelfForcing.critic_draw`)
CRITIC_DRAW_SALT = 1000


def train_window_frames(cfg: DictConfig) -> int | None:
    """The training-time attention window of Self Forcing §3.4 in frames (the rollout's KV capacity),
    from `paradigm.train_window`: null (the whole video), an int, or `exclude_first_block` =
    num_frames - frames_per_block, the widest window in which the last block cannot attend the first
    (REFERENCE §3: "restrict the attention window so the last chunk cannot see the first chunk")."""
    window = cfg.paradigm.get("train_window")
    if window is None:
        return None
    if window == EXCLUDE_FIRST_BLOCK:
        return int(cfg.world.num_frames) - int(cfg.paradigm.frames_per_block)
    return int(window)


class SelfForcing(ForcingModule):
    """Self Forcing with a pluggable objective; rollout modes self | teacher_forcing | diffusion_forcing."""

    objectives: ClassVar[tuple[str, ...]] = ("dmd", "sid", "gan")
    manual_optimization: ClassVar[bool] = True

    @classmethod
    def optimizer_steps(cls, cfg: DictConfig, iterations: int) -> int:
        """A critic step every iteration plus a generator step every `ratio`-th one after the warmup."""
        if iterations < 0:
            return iterations
        return iterations + generator_steps(iterations, int(cfg.paradigm.ratio), int(cfg.paradigm.get("critic_warmup", 0)))

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        self.automatic_optimization = False
        self.real_score_net: CausalWanModel | None = None
        self.critic_net: CausalWanModel | None = None
        self.objective: DistributionMatching | None = None

    # ------------------------------------------------------------------ config
    @classmethod
    def validate_config(cls, cfg: DictConfig) -> None:
        """Frames, objective, rollout mode and the prerequisites' sources."""
        super().validate_config(cfg)
        p = cfg.paradigm
        if p.rollout not in ROLLOUTS:
            raise ConfigError(f"paradigm.rollout={p.rollout!r} is not one of {', '.join(ROLLOUTS)}")
        steps = list(p.denoising_steps)
        if p.exit_step not in ("random", "last") and not 0 <= int(p.exit_step) < len(steps):
            raise ConfigError(f"paradigm.exit_step={p.exit_step} is not random, last or in [0, {len(steps)})")
        if not (cfg.teacher.get("path") or cfg.teacher.get("experiment")):
            raise ConfigError("Self Forcing needs a teacher (real score and critic init): set teacher=...")
        cls._check_train_window(cfg)
        cls._check_init_blocks(cfg)

    @classmethod
    def needs_clips(cls, cfg: DictConfig) -> bool:
        """Real clips only for an objective that needs real data (GAN) or a rollout with real context
        (teacher_forcing, diffusion_forcing); the self rollout with DMD / SiD trains on prompts alone."""
        from hydra.utils import get_class

        target = cfg.objective.get("_target_")
        needs_real = bool(target) and get_class(str(target)).requires_real_data
        return needs_real or cfg.paradigm.get("rollout", "self") != "self"

    @staticmethod
    def _check_train_window(cfg: DictConfig) -> None:
        """The §3.4 window holds whole blocks: a positive multiple of frames_per_block (the cache
        evicts block by block; a partial block would let part of the first block stay in view)."""
        window = cfg.paradigm.get("train_window")
        if window is None:
            return
        fpb = int(cfg.paradigm.frames_per_block)
        if isinstance(window, str) and window != EXCLUDE_FIRST_BLOCK:
            raise ConfigError(f"paradigm.train_window={window!r} is not null, an int or {EXCLUDE_FIRST_BLOCK}")
        frames = train_window_frames(cfg)
        if frames < fpb or frames % fpb:
            raise ConfigError(
                f"paradigm.train_window={window} ({frames} frames) must be a positive multiple of "
                f"frames_per_block={fpb}"
            )

    @staticmethod
    def _check_init_blocks(cfg: DictConfig) -> None:
        """An initialising experiment must share the student's block size: the causal mask it was
        trained with is the one the student rolls out with (a path is taken as given)."""
        from lightning_modules.artifacts import prerequisite_config

        p = cfg.paradigm
        init = p.generator_init
        if init.get("path") or not init.get("experiment"):
            return
        blocks = prerequisite_config(cfg, init.experiment).paradigm.get("frames_per_block")
        if blocks is not None and int(blocks) != int(p.frames_per_block):
            raise ConfigError(
                f"paradigm.generator_init.experiment={init.experiment} trains frames_per_block={blocks}, "
                f"but this student has frames_per_block={p.frames_per_block}: pick an init of the same block size"
            )

    @classmethod
    def prepare_prerequisites(cls, cfg: DictConfig) -> None:
        """Resolve the teacher and the initialised generator to weight folders (artifact store)."""
        from lightning_modules.artifacts import resolve_path

        # the generator's chain first: a concurrent run may be making the (shared) teacher meanwhile
        init = cfg.paradigm.generator_init
        init_path = resolve_path(cfg, init, "generator init") if (init.get("path") or init.get("experiment")) else None
        teacher = resolve_path(cfg, cfg.teacher, "teacher")
        with open_dict(cfg):
            cfg.teacher.path = str(teacher)
            cfg.paradigm.generator_init.path = str(init_path) if init_path else None

    # ------------------------------------------------------------------ networks
    def build_networks(self) -> None:
        """Generator (ODE-init weights), frozen real score and trainable critic (`paradigm.real_score.path`
        and `paradigm.critic.path`, each the teacher's weights when null; the architecture of each
        comes from its folder's config.json, so a 14B real score can judge a 1.3B generator)."""
        teacher_path = self.cfg.teacher.get("path")

        def load(key: str) -> CausalWanModel:  # no path (unit tests of the module): random weights
            return build_backbone(self.cfg.model, path=OmegaConf.select(self.p, f"{key}.path") or teacher_path)

        self.generator = load("generator_init")
        self.real_score_net = load("real_score").requires_grad_(False).eval()
        self.critic_net = load("critic")
        # conf/objective/<name>.yaml names the class (_target_); the objective sizes its own parts to the critic
        self.objective = instantiate(self.cfg.objective, _convert_="all").bind_critic(self.critic_net)

    def configure_model(self) -> None:
        """Build and shard the backbones; the objective's own heads (GAN) are sharded too so that
        their gradients are reduced across ranks."""
        if self.generator is not None:
            return
        super().configure_model()
        for child in self.objective.children():  # sharded per called submodule (e.g. the GAN heads)
            if any(True for _ in child.parameters()):
                hw = self.cfg.hardware
                shard_module(child, self._device_mesh, hw.param_dtype, hw.reduce_dtype, hw.get("replicate"))

    def checkpointed_networks(self) -> list[nn.Module]:
        """The generator's choice (`model.gradient_checkpointing`), and the critic and the real score
        by `paradigm.critic.gradient_checkpointing` / `paradigm.real_score.gradient_checkpointing`
        (null: as the generator). The critic trains (its backward holds a whole clip's activations);
        the real score is differentiated through by SiD (DMD and the GAN run it without grad)."""
        nets = super().checkpointed_networks()
        default = bool(self.cfg.model.get("gradient_checkpointing", False))
        for key, net in (("critic", self.critic_net), ("real_score", self.real_score_net)):
            choice = OmegaConf.select(self.p, f"{key}.gradient_checkpointing")
            if (default if choice is None else bool(choice)) and net is not None:
                nets.append(net)
        return nets

    def backbones(self) -> list[CausalWanModel]:
        """Generator, EMA, real score and critic are sharded alike."""
        return [*super().backbones(), self.real_score_net, self.critic_net]

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """Generator and critic AdamW (REFERENCE §3: betas (0, 0.999), weight decay 0.01)."""
        o = self.cfg.optim
        gen = torch.optim.AdamW(
            [p for p in self.generator.parameters() if p.requires_grad],
            lr=float(o.lr), betas=tuple(o.betas), weight_decay=float(o.weight_decay), eps=float(o.eps),
        )
        critic = torch.optim.AdamW(
            list(critic_parameters(self.objective, self.critic_net)),
            lr=float(o.critic_lr), betas=tuple(o.critic_betas), weight_decay=float(o.critic_weight_decay),
            eps=float(o.eps),
        )
        return [gen, critic]

    # ------------------------------------------------------------------ pieces of Algorithm 1
    def grid(self) -> list[float]:
        """The few-step grid in t (e.g. 1000, 937.5, 833.3, 625 for shift 5)."""
        return few_step_timesteps(tuple(self.p.denoising_steps), shift=float(self.p.warp)).tolist()

    def draw_exit_steps(self, num_blocks: int) -> list[int]:
        """Alg. 1 line 3: s ~ U{1..T} drawn once (shared by all blocks unless configured), from a
        rank-independent generator and broadcast from rank 0."""
        steps = len(self.p.denoising_steps)
        if self.p.exit_step == "last":
            draws = [steps - 1] * num_blocks
        elif self.p.exit_step != "random":
            draws = [int(self.p.exit_step)] * num_blocks
        else:
            n = 1 if self.p.same_exit_for_all_blocks else num_blocks
            drawn = torch.randint(0, steps, (n,), generator=self.rng(salt=1), device=self.device).tolist()
            draws = drawn * num_blocks if n == 1 else drawn
        return self.trainer.strategy.broadcast(draws, src=0) if self._trainer is not None else draws

    def rollout(self, batch: dict[str, Any], context: Tensor, real: Tensor | None, rngs: list) -> Rollout:
        """The generator's video for this batch in the configured rollout mode, every mode with the
        §3.4 training window (`train_window_frames`)."""
        fpb = int(self.p.frames_per_block)
        frames = int(self.cfg.world.num_frames)
        grid = self.grid()
        window = train_window_frames(self.cfg)
        if self.p.rollout == "diffusion_forcing":
            return diffusion_forcing(self.generator, real, context, frames_per_block=fpb, timesteps=grid,
                                     local_window=window, generator=self.rng(salt=3))
        return self_forcing(
            self.generator,
            self.randn(self.latent_shape(frames), rngs),
            context,
            frames_per_block=fpb,
            timesteps=grid,
            exit_steps=self.draw_exit_steps(frames // fpb),
            cache_frames=window,
            context_t=float(self.p.context_t),
            context_video=real if self.p.rollout == "teacher_forcing" else None,
            generator=self.rng(salt=4),
        )

    _draw: int = 0  # 0: the generator step's rollout; 1: the critic's own rollout

    def rng(self, salt: int, key: int = -1, step: int | None = None) -> torch.Generator:
        """`ForcingModule.rng`, with its own stream inside `critic_draw` (fresh noise, exit steps and
        re-noising for the critic's rollout; still rank-independent and identical after resume)."""
        return super().rng(salt + CRITIC_DRAW_SALT * self._draw, key, step)

    @contextmanager
    def critic_draw(self) -> Iterator[None]:
        """Draw the randomness of the critic's own rollout (Alg. 1: a fresh generator sample)."""
        self._draw = 1
        try:
            yield
        finally:
            self._draw = 0

    def critic_rollout(self, batch: dict[str, Any], context: Tensor, real: Tensor | None) -> Rollout:
        """Alg. 1's critic update: a fresh no-grad rollout of the current generator."""
        with torch.no_grad(), self.critic_draw():
            return self.rollout(batch, context, real, self.clip_rngs(batch, salt=0))

    def denoisers(self) -> tuple[Denoiser, Denoiser]:
        """Real score (bidirectional, CFG) and critic (bidirectional, no CFG)."""
        real = Denoiser(self.real_score_net, guidance_scale=self.objective.real_guidance_scale, mode="bidirectional")
        return real, Denoiser(self.critic_net, mode="bidirectional")

    # ------------------------------------------------------------------ the step
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Algorithm 1 with the generator:critic update ratio and gradient accumulation."""
        accumulate = int(self.cfg.trainer.accumulate_grad_batches)
        plan = update_plan(self.step_index(), int(self.p.ratio), accumulate, int(self.p.get("critic_warmup", 0)))
        opt_g, opt_c = self.optimizers()
        rngs = self.clip_rngs(batch, salt=0)
        cond = self.condition(batch["prompt"])
        needs_real = self.objective.requires_real_data or self.p.rollout != "self"
        real = self.clean_latents(batch) if needs_real else None
        real_score, critic = self.denoisers()
        terms: dict[str, Tensor] = {}

        with torch.set_grad_enabled(plan.generator_grad):
            roll = self.rollout(batch, cond.context, real, rngs)
        exit_range = self.objective.t_from_exit_step
        t_range = roll.t_range() if exit_range else None
        if plan.generator_grad:
            g = self.objective.generator_loss(LossInputs(roll.video, cond, critic, real_score=real_score, real=real,
                                                         t_range=t_range, generator=self.rng(salt=5)))
            self.manual_backward(g["loss"] / accumulate)
            terms.update({f"generator_{k}" if k != "loss" else "generator_loss": v for k, v in g.items()})
            if plan.generator_step:
                self.step_optimizer(opt_g, self.generator.parameters(), "generator")
                if self.generator_ema is not None:
                    ema_update(self.generator_ema, self.generator, float(self.p.ema_decay),
                               step=plan.iteration, start_step=int(self.p.ema_start))
        # Alg. 1: the critic learns from a fresh sample of the (just updated) generator; a critic-only
        # iteration's rollout already is one (drawn without grad)
        critic_roll = roll
        if plan.generator_grad and not self.p.get("critic_reuses_rollout", False):
            critic_roll = self.critic_rollout(batch, cond.context, real)
            t_range = critic_roll.t_range() if exit_range else None
        c = self.objective.critic_loss(LossInputs(critic_roll.video.detach(), cond, critic, real=real,
                                                  t_range=t_range, generator=self.rng(salt=6)))
        self.manual_backward(c["loss"] / accumulate)
        terms.update({f"critic_{k}" if k != "loss" else "critic_loss": v for k, v in c.items()})
        if plan.critic_step:
            self.step_optimizer(opt_c, critic_parameters(self.objective, self.critic_net), "critic")
        if "generator_loss" in terms:  # train/loss is the generator's loss, as for every paradigm
            terms["loss"] = terms["generator_loss"]
        terms["exit_step"] = torch.tensor(float(roll.exit_steps[0]))
        self.log_train(terms, batch_size=len(batch["prompt"]))
        return terms.get("loss", terms["critic_loss"])

    def step_optimizer(self, opt: Any, params: Any, name: str) -> None:
        """Clip (optim.grad_clip), log `train/grad_norm[_critic]`, step and zero one optimiser."""
        params = [p for p in params if p.grad is not None]
        clip = float(self.cfg.optim.get("grad_clip") or 0.0)
        if params:
            norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
            norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
            key = "train/grad_norm" if name == "generator" else "train/grad_norm_critic"
            self.log(key, norm.detach().float(), batch_size=1)
        opt.step()
        opt.zero_grad(set_to_none=True)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Clipping happens in `step_optimizer` (manual optimisation)."""

    # ------------------------------------------------------------------ evaluation and sampling
    def loss_terms(self, batch: dict[str, Any], rngs: list) -> dict[str, Tensor]:
        """`val/loss`: the objective's generator loss on a fixed rollout (no update)."""
        cond = self.condition(batch["prompt"])
        needs_real = self.objective.requires_real_data or self.p.rollout != "self"
        real = self.clean_latents(batch) if needs_real else None
        real_score, critic = self.denoisers()
        with torch.no_grad():
            roll = self.rollout(batch, cond.context, real, rngs)
        with torch.enable_grad():
            video = roll.video.detach().requires_grad_(True)
            g = self.objective.generator_loss(LossInputs(video, cond, critic, real_score=real_score, real=real,
                                                         generator=self.rng(salt=5, step=0)))
        return {"loss": g["loss"].detach()}

    def sampler_settings(self) -> dict[str, Any]:
        """Few-step stochastic sampler on the training grid, no CFG (distilled)."""
        return self.few_step_settings(self.grid())
