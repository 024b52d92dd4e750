"""Shared glue of every paradigm: networks built in `configure_model`, optimisers after
sharding, per-step randomness, uniform logging keys (`train/loss`, `train/grad_norm`, `val/loss`).

A paradigm subclasses `ForcingModule`, builds its networks in `build_networks`, and reads like
its paper's algorithm in `training_step` and `sample`. Checkpoints hold the trainable state only: the
frozen networks are referenced by source and hash (`lightning_modules.frozen_state`).
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from forcing.diffusion import Conditioning
from forcing.diffusion.schedule import few_step_timesteps
from forcing.encoders import build_codec, build_text_encoder
from forcing.errors import ConfigError
from forcing.lr_schedule import lr_factor
from forcing.models import CausalWanModel
from forcing.parallel import cast_frozen, set_gradient_sync, shard_model
from forcing.rollout import SamplerSpec, generate
from lightning_modules.frozen_state import (
    CHECKPOINT_KEY,
    FrozenRecord,
    check_frozen,
    leave_frozen_out,
    record_frozen,
)


def build_backbone(model_cfg: DictConfig, path: str | None = None, **extra: Any) -> CausalWanModel:
    """A backbone from the weights folder `path`, else from local weights (`model.pretrained`), else
    from a preset (random init)."""
    overrides = {**OmegaConf.to_container(model_cfg.overrides, resolve=True), **extra}
    source = path or model_cfg.get("pretrained")
    if source:
        model = CausalWanModel.from_pretrained(str(source), preset=model_cfg.preset, **overrides)
    else:
        model = CausalWanModel.from_preset(model_cfg.preset, **overrides)
    return model


class ForcingModule(L.LightningModule):
    """Base LightningModule of the suite (one subclass per paradigm)."""

    #: objectives this paradigm can train with (`objective.name`)
    objectives: ClassVar[tuple[str, ...]] = ("fm",)
    #: manual optimisation (two optimisers): the module accumulates gradients itself
    manual_optimization: ClassVar[bool] = False
    #: generates block by block with a KV cache (False: full-attention models sample whole clips)
    can_stream: ClassVar[bool] = True
    #: trains on the world's data module (False: data of its own, e.g. ODE pairs)
    uses_world_data: ClassVar[bool] = True

    @classmethod
    def needs_clips(cls, cfg: DictConfig) -> bool:
        """Whether training reads clips of real data (a batch's "video" or "latents"), not prompts alone."""
        return True

    @classmethod
    def optimizer_steps(cls, cfg: DictConfig, iterations: int) -> int:
        """Lightning's `global_step` after `iterations` training iterations (`trainer.max_steps`
        counts iterations for every paradigm; two-optimiser paradigms step more than once)."""
        return iterations

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__()
        cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
        self.cfg = cfg
        self.save_hyperparameters({"config": OmegaConf.to_container(cfg, resolve=True)})
        self.p = cfg.paradigm
        self.text_encoder: nn.Module | None = None
        self.codec: nn.Module | None = None
        self.generator: CausalWanModel | None = None
        self.generator_ema: CausalWanModel | None = None
        #: source and sha256 of each frozen network as built (`configure_model`), recorded in checkpoints
        self.frozen_records: dict[str, FrozenRecord] = {}
        leave_frozen_out(self)

    # ------------------------------------------------------------------ validation
    @classmethod
    def validate_config(cls, cfg: DictConfig) -> None:
        """Raise `ConfigError` (one line) for a run this paradigm cannot do."""
        frames, fpb = int(cfg.world.num_frames), int(cfg.paradigm.frames_per_block)
        if fpb < 1 or frames % fpb:
            raise ConfigError(
                f"world.num_frames={frames} does not divide into blocks of paradigm.frames_per_block={fpb}"
            )
        window = cfg.paradigm.get("local_window")
        if window is not None and int(window) < fpb:
            raise ConfigError(f"paradigm.local_window={window} is smaller than one block ({fpb} frames)")
        if cfg.objective.name not in cls.objectives:
            raise ConfigError(
                f"paradigm {cfg.paradigm.name!r} cannot train with objective={cfg.objective.name!r} "
                f"(it takes: {', '.join(cls.objectives)})"
            )
        if cls.uses_world_data:
            from datamodules import check_world_data

            check_world_data(cfg, cls.needs_clips(cfg))

    @classmethod
    def build_datamodule(cls, cfg: DictConfig) -> L.LightningDataModule:
        """The data this paradigm trains on (default: the world's clips and prompts)."""
        from datamodules import build_datamodule

        return build_datamodule(cfg)

    # ------------------------------------------------------------------ building
    def configure_model(self) -> None:
        """Build every network, record each frozen one's source and hash (before any cast), store the
        frozen ones in `hardware.frozen_dtype`, then shard per block (FSDP2) when a device mesh exists:
        trainable weights stay fp32 (so do their AdamW state and the EMA) and are all-gathered in
        `hardware.param_dtype` for compute."""
        if self.generator is not None:
            return
        self.text_encoder = build_text_encoder(**OmegaConf.to_container(self.cfg.world.text_encoder, resolve=True))
        self.codec = build_codec(**OmegaConf.to_container(self.cfg.world.codec, resolve=True))
        for frozen in (self.text_encoder, self.codec):
            frozen.requires_grad_(False).eval()
        self.build_networks()
        if self.p.get("ema_decay") is not None and self.generator_ema is None:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        self.frozen_records = record_frozen(self)
        hw = self.cfg.hardware
        for frozen in self.frozen_networks():
            cast_frozen(frozen, hw.get("frozen_dtype", "float32"))
        mesh = self._device_mesh
        checkpointed = self.checkpointed_networks()
        for net in self.backbones():
            shard_model(
                net,
                mesh=mesh,
                param_dtype=hw.param_dtype,
                reduce_dtype=hw.reduce_dtype,
                activation_checkpointing=any(net is c for c in checkpointed),
                replicate=hw.get("replicate"),
                checkpoint_every=int(self.cfg.model.get("checkpoint_every", 1)),
            )

    def checkpointed_networks(self) -> list[nn.Module]:
        """Backbones whose blocks are recomputed in backward: the generator when
        `model.gradient_checkpointing` (networks run only without grad gain nothing from it)."""
        return [self.generator] if self.cfg.model.get("gradient_checkpointing", False) else []

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Deferred gradient sync under FSDP2: gradients are reduced on the last micro-batch of an
        iteration only (`trainer.accumulate_grad_batches`), also under manual optimisation."""
        accumulate = self.micro_batches_per_iteration
        if self._device_mesh is None or accumulate == 1:
            return
        last_micro = self.step_index() % accumulate == accumulate - 1
        set_gradient_sync(self, last_micro, hsdp=(self.cfg.hardware.get("replicate") or 1) > 1)

    def build_networks(self) -> None:
        """Create `self.generator` and any other networks (teacher, critic)."""
        self.generator = build_backbone(self.cfg.model)

    def backbones(self) -> list[CausalWanModel]:
        """The backbones to shard (trainable and frozen)."""
        return [m for m in (self.generator, self.generator_ema) if m is not None]

    def frozen_networks(self) -> list[nn.Module]:
        """The networks that never train (text encoder, codec, frozen backbones such as a teacher,
        real score or reference policy); the EMA is excluded: it accumulates small updates."""
        backbones = [
            m for m in self.backbones()
            if m is not self.generator_ema and not any(p.requires_grad for p in m.parameters())
        ]
        return [m for m in (self.text_encoder, self.codec, *backbones) if m is not None]

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the frozen networks' sources and hashes (their weights are not in the checkpoint)."""
        checkpoint[CHECKPOINT_KEY] = dict(self.frozen_records)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to resume with frozen networks other than those the checkpoint was trained with."""
        where = self.trainer.ckpt_path if self._trainer is not None else "being loaded"
        check_frozen(checkpoint.get(CHECKPOINT_KEY), self.frozen_records, where)

    def configure_optimizers(self) -> Any:
        """AdamW on the generator with linear warm-up, then constant or cosine decay (`optim.decay_steps`,
        `optim.min_lr_ratio`; created after sharding)."""
        o = self.cfg.optim
        opt = torch.optim.AdamW(
            [p for p in self.generator.parameters() if p.requires_grad],
            lr=float(o.lr),
            betas=tuple(o.betas),
            weight_decay=float(o.weight_decay),
            eps=float(o.eps),
        )
        warmup, decay = int(o.warmup_steps), o.get("decay_steps")
        decay = None if decay is None else int(decay)
        min_ratio = float(o.get("min_lr_ratio", 0.1))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, warmup, decay, min_ratio))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------------ data
    @property
    def micro_batches_per_iteration(self) -> int:
        """Batches (`training_step` calls) per training iteration: `trainer.accumulate_grad_batches`,
        also under manual optimisation, where the module accumulates itself (callbacks/iteration.py)."""
        return int(self.cfg.trainer.accumulate_grad_batches)

    def step_index(self) -> int:
        """Number of batches trained so far (resumes exactly from checkpoints)."""
        if self._trainer is None:
            return 0
        return int(self.trainer.fit_loop.total_batch_idx)

    def rng(self, salt: int, key: int = -1, step: int | None = None) -> torch.Generator:
        """A generator for one use (`salt`) at one training step, optionally for one clip (`key`).

        Keyed by (run seed, step, salt, key) and never by rank: per-clip randomness keyed by the
        clip's seed makes a W-rank run draw exactly what one process with W times the batch
        draws (so sharded and single-process runs agree), and shared draws (exit steps) agree
        on every rank by construction. Identical after resume.
        """
        step = self.step_index() if step is None else step
        gen = torch.Generator(device=self.device)
        gen.manual_seed(hash((int(self.cfg.seed), step, salt, key)) % (2**62))
        return gen

    def clip_rngs(self, batch: dict[str, Any], salt: int, step: int | None = None) -> list[torch.Generator]:
        """One generator per clip of the batch, keyed by the clip's seed."""
        return [self.rng(salt, int(seed), step) for seed in batch["seed"].tolist()]

    def randn(self, shape: tuple[int, ...], rngs: list[torch.Generator]) -> Tensor:
        """Standard normal noise [B, *shape], sample b drawn from rngs[b]."""
        return torch.stack([torch.randn(shape, generator=g, device=self.device) for g in rngs])

    def encode_prompts(self, prompts: list[str]) -> Tensor:
        """Frozen text encoder: prompts -> [B, L, D] (fp32, whatever the encoder's dtype) on this module's device."""
        with torch.no_grad():
            return self.text_encoder(prompts).to(self.device, torch.float32)

    def condition(
        self, prompts: list[str], dropout: float = 0.0, rngs: list[torch.Generator] | None = None
    ) -> Conditioning:
        """Text conditioning with the null prompt for CFG; `dropout` replaces prompts by "" (training)."""
        if dropout > 0 and rngs is not None:
            keep = [float(torch.rand(1, generator=g, device=g.device)) >= dropout for g in rngs]
            prompts = [p if k else "" for p, k in zip(prompts, keep)]
        context = self.encode_prompts(prompts)
        null = self.encode_prompts([""] * len(prompts))
        return Conditioning(context=context, null_context=null)

    def encode_video(self, video: Tensor) -> Tensor:
        """Frozen codec: pixels [B, 3, F, H, W] in [-1, 1] -> fp32 latents [B, C, F', H', W']."""
        with torch.no_grad():
            return self.codec.encode(video.to(self.device)).float()

    def clean_latents(self, batch: dict[str, Any]) -> Tensor:
        """The batch's clean clips as fp32 latents [B, C, F, H, W]: its "latents" when the data is
        pre-encoded (latent shards), else its "video" through the frozen codec."""
        if "latents" in batch:
            return batch["latents"].to(self.device, torch.float32)
        if "video" not in batch:
            raise ConfigError(
                "this run needs clips of real data, but the batch has prompts only: use world.data=latents"
            )
        return self.encode_video(batch["video"])

    def decode_video(self, latents: Tensor) -> Tensor:
        """Latents -> pixels [B, 3, F, H, W] in [-1, 1]."""
        with torch.no_grad():
            return self.codec.decode(latents).clamp(-1, 1)

    # ------------------------------------------------------------------ logging
    def log_train(self, terms: dict[str, Tensor], batch_size: int) -> None:
        """Log named loss terms under `train/` (the same keys for every paradigm)."""
        for key, value in terms.items():
            self.log(f"train/{key}", value.detach().float(), prog_bar=key == "loss", batch_size=batch_size, sync_dist=False)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Clip (optim.grad_clip) and log the global gradient norm as `train/grad_norm`."""
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not params:
            return
        clip = float(self.cfg.optim.get("grad_clip") or 0.0)
        norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
        if hasattr(norm, "full_tensor"):
            norm = norm.full_tensor()
        self.log("train/grad_norm", norm.detach().float(), batch_size=1)

    # ------------------------------------------------------------------ sampling
    def sampling_generator(self) -> CausalWanModel:
        """The network used for samples: the EMA copy when it exists."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def sampler_settings(self) -> SamplerSpec:
        """How this paradigm generates each block (`forcing.rollout.SamplerSpec`)."""
        raise NotImplementedError

    def few_step_settings(self, timesteps: list[float] | None = None) -> SamplerSpec:
        """A distilled generator's sampler: the stochastic few-step sampler on `timesteps` (default
        the 4-step grid 1000, 937.5, 833.3, 625), `paradigm.guidance_scale` (1 = no CFG)."""
        return SamplerSpec(
            name=f"{type(self).__name__} few-step",
            frames_per_block=self.p.frames_per_block,
            timesteps=timesteps if timesteps is not None else few_step_timesteps().tolist(),
            stochastic=True,
            guidance_scale=self.p.get("guidance_scale", 1.0),
        )

    @torch.no_grad()
    def stream(
        self,
        prompts: list[str],
        num_frames: int,
        seed: int = 0,
        cache_frames: int | None = None,
        sink_frames: int = 0,
        on_block: Any = None,
    ) -> Tensor:
        """AR generation of any length with a rolling KV cache (Algorithm 2): latents [B, C, F, H, W].

        cache_frames: KV window + sink in frames (None: the whole video).
        """
        gen = torch.Generator(device=self.device).manual_seed(seed)
        noise = torch.randn((len(prompts), *self.latent_shape(num_frames)), generator=gen, device=self.device)
        return generate(
            self.sampling_generator(),
            noise,
            self.condition(prompts),
            **self.sampler_settings().stream_kwargs(),
            cache_frames=cache_frames,
            sink_frames=sink_frames,
            generator=gen,
            on_block=on_block,
        )

    def sample(self, prompts: list[str], num_frames: int, seed: int = 0) -> Tensor:
        """Latents [B, C, num_frames, H, W] for `prompts`, as the paradigm samples at inference."""
        window = self.p.get("local_window")
        return self.stream(prompts, num_frames, seed, cache_frames=int(window) if window is not None else None)

    def latent_shape(self, num_frames: int) -> tuple[int, int, int, int]:
        """[C, F, H, W] of latents for `num_frames` latent frames of this world."""
        w = self.cfg.world
        cfg = self.generator.config
        stride = getattr(self.codec, "spatial_stride", 1)
        return (cfg.in_dim, num_frames, int(w.height) // stride, int(w.width) // stride)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """`val/loss`: the paradigm's training loss on fixed validation clips and fixed noise."""
        terms = self.loss_terms(batch, self.clip_rngs(batch, salt=10_000, step=0))
        self.log("val/loss", terms["loss"].detach().float(), batch_size=len(batch["prompt"]), sync_dist=True)
        return terms["loss"]

    def loss_terms(self, batch: dict[str, Any], rngs: list[torch.Generator]) -> dict[str, Tensor]:
        """The paradigm's loss on a batch with the per-clip randomness `rngs`."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """One step of the paradigm's loss (automatic optimisation)."""
        terms = self.loss_terms(batch, self.clip_rngs(batch, salt=0))
        self.log_train(terms, batch_size=len(batch["prompt"]))
        return terms["loss"]
