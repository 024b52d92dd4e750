"""Compose-time validation of a run: ranges, shapes, names and paths, before anything is built or written.

Three declarative tables say what a valid config is: `RANGES` (the range of every numeric value,
checked element-wise for lists), `CHOICES` (the names a key may take, listed in the error) and
`PATHS` (weights and data folders that must exist when given), plus `WAN_LAYOUT` (the subfolders a
world's weights folder `world.root`, WAN_ROOT, must hold). Keys a paradigm does not have are
skipped. `check_objective` checks `objective._target_` and its keys against the class that
`hydra.utils.instantiate` will build. `validate_run(cfg)` raises the first violation as a one-line
`ConfigError`;
`check_group_options(args)` refuses an unknown config-group option (`hardware=quantum`) on the
command line before Hydra composes (Hydra's own report is a multi-line exit 1).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from forcing.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"
_ABSENT = object()


@dataclass(frozen=True)
class Range:
    """A closed or open numeric interval; `integer` values only; `nullable`: null is allowed too."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    integer: bool = False
    nullable: bool = False

    def describe(self) -> str:
        """The range in words: "an integer >= 1", "a number in [0, 1)"."""
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            return f"{kind} in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"
        if self.low is not None:
            return f"{kind} {'>' if self.open_low else '>='} {self.low:g}"
        if self.high is not None:
            return f"{kind} {'<' if self.open_high else '<='} {self.high:g}"
        return kind

    def contains(self, value: Any) -> bool:
        """Whether `value` lies in the range (bools and strings are not numbers)."""
        if value is None:
            return self.nullable
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not float(value).is_integer():
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.open_high else value > self.high))


POSITIVE_INT = Range(1, integer=True)
COUNT = Range(0, integer=True)
POSITIVE = Range(0, open_low=True)
NON_NEGATIVE = Range(0)
PROBABILITY = Range(0, 1)
BETA = Range(0, 1, open_high=True)
TIMESTEP = Range(0, 1000)

#: the range of every numeric value of the config groups (absent keys: another paradigm's)
RANGES: dict[str, Range] = {
    "seed": COUNT,
    # trainer
    "trainer.max_steps": POSITIVE_INT,
    "trainer.accumulate_grad_batches": POSITIVE_INT,
    "trainer.log_every_n_steps": POSITIVE_INT,
    "trainer.val_check_interval": POSITIVE_INT,
    "trainer.limit_val_batches": NON_NEGATIVE,
    "trainer.num_sanity_val_steps": Range(-1, integer=True),
    # world
    "world.num_frames": POSITIVE_INT,
    "world.height": POSITIVE_INT,
    "world.width": POSITIVE_INT,
    "world.max_shapes": COUNT,
    "world.batch_size": POSITIVE_INT,
    "world.val_batch_size": POSITIVE_INT,
    "world.train_size": POSITIVE_INT,
    "world.val_size": COUNT,
    "world.num_workers": COUNT,
    "world.text_encoder.dim": POSITIVE_INT,
    "world.text_encoder.max_length": POSITIVE_INT,
    "world.codec.spatial_stride": Range(1, integer=True, nullable=True),
    # hardware
    "hardware.devices": POSITIVE_INT,
    "hardware.num_nodes": POSITIVE_INT,
    "hardware.replicate": Range(1, integer=True, nullable=True),
    "model.checkpoint_every": POSITIVE_INT,
    # optimiser
    "optim.lr": POSITIVE,
    "optim.critic_lr": POSITIVE,
    "optim.eps": POSITIVE,
    "optim.weight_decay": NON_NEGATIVE,
    "optim.critic_weight_decay": NON_NEGATIVE,
    "optim.grad_clip": Range(0, nullable=True),
    "optim.warmup_steps": COUNT,
    "optim.decay_steps": Range(1, integer=True, nullable=True),
    "optim.min_lr_ratio": Range(0, 1),
    "optim.betas": BETA,
    "optim.critic_betas": BETA,
    # teacher and objective
    "objective.real_guidance_scale": NON_NEGATIVE,
    "objective.shift": POSITIVE,
    "objective.min_t": TIMESTEP,
    "objective.max_t": TIMESTEP,
    "objective.alpha": NON_NEGATIVE,
    "objective.r_sigma": POSITIVE,
    "objective.r_lambda": NON_NEGATIVE,
    "objective.num_registers": COUNT,
    "objective.tap_blocks": Range(0, integer=True, nullable=True),
    # paradigm
    "paradigm.frames_per_block": POSITIVE_INT,
    "paradigm.local_window": Range(1, integer=True, nullable=True),
    "paradigm.shift": POSITIVE,
    "paradigm.sample_shift": POSITIVE,
    "paradigm.warp": POSITIVE,
    "paradigm.prompt_dropout": PROBABILITY,
    "paradigm.ema_decay": Range(0, 1, nullable=True),
    "paradigm.ema_start": COUNT,
    "paradigm.sample_steps": POSITIVE_INT,
    "paradigm.guidance_scale": NON_NEGATIVE,
    "paradigm.pair_guidance_scale": NON_NEGATIVE,
    "paradigm.teacher_guidance_scale": NON_NEGATIVE,
    "paradigm.num_pairs": POSITIVE_INT,
    "paradigm.num_steps": POSITIVE_INT,
    "paradigm.huber_c": Range(0, open_low=True, nullable=True),
    "paradigm.denoising_steps": Range(0, 1000, open_low=True),
    "paradigm.context_t": TIMESTEP,
    "paradigm.ratio": POSITIVE_INT,
    "paradigm.critic_warmup": COUNT,
    "paradigm.rollout_frames": POSITIVE_INT,
    "paradigm.rollout_frames_start": Range(1, integer=True, nullable=True),
    "paradigm.rollout_schedule_steps": COUNT,
    "paradigm.grpo.group_size": POSITIVE_INT,
    "paradigm.grpo.clip_eps": POSITIVE,
    "paradigm.grpo.updates_per_batch": POSITIVE_INT,
    "paradigm.grpo.kl_weight": NON_NEGATIVE,
    "paradigm.grpo.rollout_frames": Range(1, integer=True, nullable=True),
    # callbacks
    "callbacks.checkpoint_every_n_steps": COUNT,
    "callbacks.keep_last_k": Range(-1, integer=True),
    "callbacks.samples_every_n_steps": COUNT,
    "callbacks.num_samples": POSITIVE_INT,
    "callbacks.sample_fps": POSITIVE_INT,
    "callbacks.eval_every_n_steps": COUNT,
    "callbacks.eval_horizons": POSITIVE,
    "callbacks.eval_num_videos": POSITIVE_INT,
    "callbacks.eval_window": Range(1, integer=True, nullable=True),
    "callbacks.eval_sink": COUNT,
}


def _presets() -> list[str]:
    from forcing.models.presets import PRESETS

    return sorted(PRESETS)


def _objectives() -> list[str]:
    """The names the options of `conf/objective/` declare (`objective.name`)."""
    return sorted(str(OmegaConf.load(option).name) for option in (CONF / "objective").glob("*.yaml"))


#: spatial stride of each codec kind (`world.codec.spatial_stride` overrides it), known without weights
CODEC_STRIDES: dict[str, int] = {"identity": 1, "shapes": 8, "wan_vae": 8}
DTYPES = ("float32", "bfloat16", "float16")

#: the names a key may take (a tuple, or a function listing them)
CHOICES: dict[str, Sequence[str] | Callable[[], Sequence[str]]] = {
    "model.preset": _presets,
    "objective.name": _objectives,
    "hardware.accelerator": ("cpu", "gpu", "cuda", "mps", "auto"),
    "hardware.strategy": ("auto", "fsdp2"),
    "hardware.precision": ("32-true", "bf16-mixed", "bf16-true", "16-mixed", "16-true", "64-true"),
    "hardware.param_dtype": DTYPES,
    "hardware.reduce_dtype": DTYPES,
    "hardware.frozen_dtype": DTYPES,
    "world.codec.kind": tuple(CODEC_STRIDES),
    "world.text_encoder.kind": ("toy", "umt5", "precomputed"),
    "world.data": ("prompts", "latents"),
    "logger.kind": ("tensorboard",),
    "paradigm.loss_weighting": ("none", "wan"),
}

#: folders and files that must exist when set, with the key of the experiment that makes them
PATHS: dict[str, str | None] = {
    "teacher.path": "teacher.experiment",
    "paradigm.generator_init.path": "paradigm.generator_init.experiment",
    "paradigm.init_from": None,
    "paradigm.pairs_path": None,
    "paradigm.context_pairs_path": None,
    "paradigm.real_score.path": None,
    "paradigm.critic.path": None,
    "model.pretrained": None,
    "world.codec.path": None,
    "world.text_encoder.path": None,
}

#: the diffusers Wan2.1 layout `world.root` (WAN_ROOT) must hold: each subfolder and the file it needs
WAN_LAYOUT: dict[str, str] = {
    "text_encoder": "config.json",
    "tokenizer": "tokenizer_config.json",
    "vae": "config.json",
    "transformer": "config.json",
}
#: what WAN_ROOT must be, in the errors
WAN_EXPECTED = f"expected the diffusers Wan2.1 layout: {', '.join(f'{sub}/' for sub in WAN_LAYOUT)}"


def select(cfg: DictConfig, key: str) -> Any:
    """The resolved value of `key`, or `_ABSENT` when this config has no such key."""
    try:
        value = OmegaConf.select(cfg, key, default=_ABSENT)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{key}: {err}".splitlines()[0]) from err
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def check_ranges(cfg: DictConfig) -> None:
    """Every numeric value of `RANGES` (each element of a list) lies in its range."""
    for key, bound in RANGES.items():
        value = select(cfg, key)
        if value is _ABSENT:
            continue
        values = value if isinstance(value, list) else [value]
        if not all(bound.contains(v) for v in values):
            null = " or null" if bound.nullable else ""
            raise ConfigError(f"{key}={value} must be {bound.describe()}{null}")
    fast = select(cfg, "trainer.fast_dev_run")
    if fast is not _ABSENT and not (isinstance(fast, bool) or COUNT.contains(fast)):
        raise ConfigError(f"trainer.fast_dev_run={fast} must be true, false or a number of batches >= 0")
    low, high = select(cfg, "objective.min_t"), select(cfg, "objective.max_t")
    if _ABSENT not in (low, high) and low >= high:
        raise ConfigError(f"objective.min_t={low} must be below objective.max_t={high}")


def check_choices(cfg: DictConfig) -> None:
    """Every named option of `CHOICES` is one of its valid names (listed in the error)."""
    for key, choices in CHOICES.items():
        value = select(cfg, key)
        valid = list(choices() if callable(choices) else choices)
        if value is not _ABSENT and value not in valid:
            raise ConfigError(f"{key}={value!r} is not one of: {', '.join(valid)}")


def spatial_multiple(cfg: DictConfig) -> tuple[int, str]:
    """What world.height and world.width must be multiples of: patch x codec stride (and why)."""
    from forcing.models.presets import get_preset

    overrides = select(cfg, "model.overrides") or {}
    try:
        arch = get_preset(str(cfg.model.preset), **overrides)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model.overrides={overrides} do not make a valid {cfg.model.preset!r} backbone: {err}") from err
    codec = cfg.world.codec
    stride = int(codec.get("spatial_stride") or CODEC_STRIDES[str(codec.kind)])
    patch_h, patch_w = arch.patch_size[1:]
    if patch_h != patch_w:
        raise ConfigError(f"model patch_size={list(arch.patch_size)}: height and width patches must be equal")
    why = f"patch {patch_h} of model.preset={cfg.model.preset} x spatial stride {stride} of world.codec.kind={codec.kind}"
    return patch_h * stride, why


def keyword_parameters(cls: type) -> set[str] | None:
    """The keywords `cls(...)` accepts, following `**kwargs` up its bases; None when any is accepted."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = list(inspect.signature(klass.__init__).parameters.values())[1:]  # past self
        names.update(p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return None


def check_objective(cfg: DictConfig) -> None:
    """`objective._target_` (when set) names a `DistributionMatching` class that takes every other
    key of `objective` as a keyword (what `hydra.utils.instantiate` will pass it)."""
    from hydra.utils import get_class

    from forcing.objectives import DistributionMatching

    target = select(cfg, "objective._target_")
    if target is _ABSENT:
        return
    try:
        cls = get_class(str(target))
    except Exception as err:  # noqa: BLE001 - any import failure is a config error here
        raise ConfigError(f"objective._target_={target!r} cannot be imported: {err}".splitlines()[0]) from err
    if not (isinstance(cls, type) and issubclass(cls, DistributionMatching)):
        raise ConfigError(f"objective._target_={target!r} is not a DistributionMatching objective")
    accepted = keyword_parameters(cls)
    unknown = sorted(k for k in cfg.objective if not str(k).startswith("_") and k not in (accepted or ()))
    if accepted is not None and unknown:
        raise ConfigError(
            f"objective.{unknown[0]} is not a setting of {target} (it takes: {', '.join(sorted(accepted))})"
        )


def check_shapes(cfg: DictConfig) -> None:
    """Height and width divide by the patch times the codec's stride; the global batch divides over
    the ranks and accumulated micro-batches; the evaluation window holds a
    block (frames dividing into blocks is the paradigm's check, `ForcingModule.validate_config`)."""
    fpb = int(cfg.paradigm.frames_per_block)
    multiple, why = spatial_multiple(cfg)
    for key in ("height", "width"):
        size = int(cfg.world[key])
        if size % multiple:
            raise ConfigError(f"world.{key}={size} is not a multiple of {multiple} ({why})")
    ranks, accumulate = int(cfg.hardware.devices) * int(cfg.hardware.num_nodes), int(cfg.trainer.accumulate_grad_batches)
    batch = int(cfg.world.batch_size)
    if batch % (ranks * accumulate):
        raise ConfigError(
            f"world.batch_size={batch} (the global batch of an iteration) is not a multiple of {ranks * accumulate} "
            f"= {ranks} ranks (hardware) x {accumulate} micro-batches (trainer.accumulate_grad_batches)"
        )
    replicate = cfg.hardware.get("replicate")
    if replicate and ranks % int(replicate):
        raise ConfigError(
            f"hardware.replicate={replicate} (HSDP replica groups) does not divide the {ranks} ranks "
            f"({cfg.hardware.devices} devices x {cfg.hardware.num_nodes} nodes)"
        )
    cbs = cfg.callbacks
    if int(cbs.eval_every_n_steps) > 0 and cbs.eval_window is not None and int(cbs.eval_window) < fpb:
        raise ConfigError(f"callbacks.eval_window={cbs.eval_window} is smaller than one block ({fpb} frames)")


def check_precision(cfg: DictConfig) -> None:
    """Refuse Lightning's half `*-true` precisions with FSDP2: they cast the whole module, so the
    master weights, AdamW state and EMA would be half precision (lr-2e-6 updates vanish below
    bf16 resolution); FSDP2 computes in half precision through `hardware.param_dtype` instead."""
    hw = cfg.hardware
    if hw.strategy == "fsdp2" and hw.precision in ("bf16-true", "16-true"):
        raise ConfigError(
            f"hardware.precision={hw.precision} casts the master weights, AdamW state and EMA to half precision; "
            "with hardware.strategy=fsdp2 use hardware.precision=32-true and hardware.param_dtype=bfloat16 "
            "(fp32 sharded weights, bf16 compute)"
        )


def check_paths(cfg: DictConfig) -> None:
    """Weights and data given by path exist (a missing one never falls back to training another)."""
    for key, maker in PATHS.items():
        value = select(cfg, key)
        if value in (_ABSENT, None, "") or Path(str(value)).exists():
            continue
        hint = ""
        if "???" in str(value):
            hint = f" (set the environment variable WAN_ROOT; {WAN_EXPECTED})"
        elif maker and select(cfg, maker) not in (_ABSENT, None):
            hint = f" (made by `python run.py experiment={select(cfg, maker)}`, exported to its weights folder)"
        raise ConfigError(f"{key}={value} does not exist{hint}")


def check_layout(cfg: DictConfig) -> None:
    """A world with weights (`world.root`, world=wan: WAN_ROOT) names a folder of the `WAN_LAYOUT`:
    set, existing, every subfolder there with its file (the first missing one is named)."""
    if "root" not in cfg.get("world", {}):
        return
    root = select(cfg, "world.root")  # an unset WAN_ROOT resolves to ???, which reads as absent
    world = f"world={select(cfg, 'world.name')}"
    if root in (_ABSENT, None, "", "???"):
        raise ConfigError(f"{world} needs the environment variable WAN_ROOT (or world.root=) ({WAN_EXPECTED})")
    if not Path(str(root)).is_dir():
        raise ConfigError(f"{world}: WAN_ROOT={root} is not a folder ({WAN_EXPECTED})")
    for sub, needed in WAN_LAYOUT.items():
        folder = Path(str(root)) / sub
        if not folder.is_dir():
            raise ConfigError(f"{world}: WAN_ROOT/{sub} is missing in {root} ({WAN_EXPECTED})")
        if not (folder / needed).is_file():
            raise ConfigError(f"{world}: WAN_ROOT/{sub} has no {needed} (WAN_ROOT={root}; {WAN_EXPECTED})")


def check_budget(cfg: DictConfig, conf: Path = CONF) -> None:
    """Refuse a budget with per-experiment entries (`conf/budget/<budget>/`, e.g. study) that has no
    entry for this experiment: Hydra's optional lookup would silently train the demo recipe. The
    demo budget has no entries: it is every experiment's own recipe."""
    budget = str(cfg.get("budget_name", "demo"))
    entries = conf / "budget" / budget
    if entries.is_dir() and not (entries / f"{cfg.experiment_name}.yaml").is_file():
        raise ConfigError(
            f"budget={budget} has no entry for experiment {cfg.experiment_name}: add "
            f"conf/budget/{budget}/{cfg.experiment_name}.yaml (a family of conf/budget/{budget}/_family/)"
        )


def check_pretrained(cfg: DictConfig) -> None:
    """A run on a pretrained base (`pretrained=<base>`, `pretrained_requires`) keeps the world and
    architecture the base's weights fit: `world=wan` or `model=tiny` on the shapes base is refused
    with the way out (`pretrained=none`), not trained on weights that do not fit."""
    required = cfg.get("pretrained_requires")
    if not required:
        return
    flat = OmegaConf.to_container(required, resolve=True)

    def leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
        if isinstance(node, dict):
            return [kv for k, v in node.items() for kv in leaves(v, f"{prefix}{k}.")]
        return [(prefix[:-1], node)]

    for key, value in leaves(flat):
        found = select(cfg, key)
        if found != value:
            found = "nothing" if found is _ABSENT else f"{key}={found}"
            raise ConfigError(
                f"pretrained={cfg.get('pretrained_name')} is a base of {key}={value}, this run has "
                f"{found}: add pretrained=none to train without the base"
            )


def validate_run(cfg: DictConfig) -> None:
    """Raise `ConfigError` (one line) for the first bad value of `cfg`: the pretrained base's world,
    names, ranges, shapes, precision, the world's weights layout, paths, the budget's entry."""
    check_pretrained(cfg)
    check_choices(cfg)
    check_objective(cfg)
    check_ranges(cfg)
    check_shapes(cfg)
    check_precision(cfg)
    check_layout(cfg)
    check_paths(cfg)
    check_budget(cfg)


def check_group_options(args: Sequence[str], conf: Path = CONF) -> None:
    """Refuse `group=option` command-line overrides naming no file of `conf/<group>/` (sweeps:
    every option), listing the group's options. Other arguments are left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep

    parser = OverridesParser.create()
    for arg in args:
        if arg.startswith("-"):
            continue
        try:
            override = parser.parse_override(arg)
        except Exception:  # noqa: BLE001 - not an override (a flag's value): Hydra reports it
            continue
        group = override.key_or_group
        if override.is_delete() or not (conf / group).is_dir():
            continue
        value = override.value()
        options = value.list if isinstance(value, ChoiceSweep) else [value]
        valid = sorted(p.stem for p in (conf / group).glob("*.yaml"))
        for option in options:
            if isinstance(option, str) and option not in valid:
                raise ConfigError(f"{group}={option} is not an option of {group}: {', '.join(valid)}")
