"""Turn a composed config into a validated, resumable Lightning run.

Everything that can be wrong with a run is checked here before anything is built or written: the
values of the config (`lightning_modules.validation`: ranges, shapes, names, paths), the
paradigm's own constraints (frames per block, objective), the checkpoint to resume, and the run
directory (a fresh run never overwrites an earlier run's checkpoints). The run directory is made
only then; a run ends with one summary line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from callbacks.iteration import iteration
from forcing.errors import ConfigError
from lightning_modules.checkpoint_files import checkpoint_problem, checkpoints_in, newest_complete


def run_dir_of(cfg: DictConfig) -> Path:
    """The run directory: `${paths.runs}/${name}`, the same on every rank."""
    return Path(cfg.paths.runs) / str(cfg.name)


def paradigm_class(cfg: DictConfig) -> type[L.LightningModule]:
    """The LightningModule class named by `paradigm._target_`."""
    try:
        return get_class(cfg.paradigm._target_)
    except Exception as err:  # noqa: BLE001 - any import failure is a config error here
        raise ConfigError(f"paradigm._target_={cfg.paradigm._target_!r} cannot be imported: {err}") from err


def requeued() -> bool:
    """Whether this process is a SLURM job requeued after a timeout or preemption
    (`SLURM_RESTART_COUNT` > 0): it resumes its run directory even with `ckpt_path=null`."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def resolve_ckpt_path(cfg: DictConfig, run_dir: Path) -> str | None:
    """Map `ckpt_path` (null | auto | path) to a complete checkpoint (a file or a DCP directory),
    refusing to overwrite a run unless the job was requeued (`requeued`). `auto`: the newest complete checkpoint of the run directory
    (`lightning_modules.checkpoint_files.newest_complete`), None in a fresh one."""
    ckpt_dir = run_dir / "checkpoints"
    spec = cfg.get("ckpt_path")
    if spec is None and requeued():
        spec = "auto"  # the same job again after a timeout or preemption: continue it
    if spec is None:
        if checkpoints_in(ckpt_dir):
            raise ConfigError(
                f"{run_dir} already holds checkpoints of an earlier run: resume it with ckpt_path=auto "
                f"or start another with name=<new name>"
            )
        return None
    if spec == "auto":
        path = newest_complete(ckpt_dir)
        return None if path is None else str(path)
    path = Path(spec)
    if not path.exists():
        raise ConfigError(f"ckpt_path={spec} does not exist")
    check_checkpoint_file(path)
    return str(path)


def check_checkpoint_file(path: Path) -> None:
    """Fail early on a truncated or corrupt checkpoint file (torch checkpoints are zip archives) or an
    incomplete distributed checkpoint directory."""
    problem = checkpoint_problem(path)
    if problem is not None:
        raise ConfigError(f"checkpoint {path} {problem}")


def validate(cfg: DictConfig) -> type[L.LightningModule]:
    """Every check that needs no model, data or file: the config's values, then the paradigm's
    constraints. Returns the paradigm class."""
    from lightning_modules.validation import validate_run

    validate_run(cfg)
    cls = paradigm_class(cfg)
    cls.validate_config(cfg)
    return cls


def launch(cfg: DictConfig, extra_callbacks: Sequence[L.Callback] = ()) -> L.Trainer:
    """Validate `cfg`, build datamodule, module and trainer, and fit. Returns the trainer."""
    from lightning_modules.console import log, log_file, summary_line
    from lightning_modules.trainer import build_trainer

    started = time.time()
    cls = validate(cfg)
    run_dir = run_dir_of(cfg)
    ckpt_path = resolve_ckpt_path(cfg, run_dir)
    prepare = getattr(cls, "prepare_prerequisites", None)
    if prepare is not None:
        prepare(cfg)

    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    datamodule = cls.build_datamodule(cfg)
    module = cls(cfg)
    trainer = build_trainer(cfg, run_dir, extra_callbacks, paradigm=cls)
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    if cfg.get("train", True):
        with log_file(run_dir / "run.log", enabled=trainer.is_global_zero):
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
            if trainer.is_global_zero:
                log.info(summary_line(trainer, run_dir, iteration(trainer), started))
    return trainer
