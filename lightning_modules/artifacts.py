"""The artifact store: prerequisites (a teacher, an initialised generator, ODE pairs) named by
the experiment that makes them and keyed by that experiment's resolved config.

On the shapes world a missing artifact is made on the spot (the prerequisite experiment is
trained in-process on one device, then its generator, EMA when present, is exported with
`save_pretrained`); a second run finds it and reuses it. At Wan scale artifacts are local paths
and a missing one is an error naming the command that makes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from omegaconf import DictConfig, OmegaConf, open_dict

from forcing.errors import ConfigError

log = logging.getLogger(__name__)

#: config keys that never change what an artifact is (where it is written, how it is shown)
#: (`pretrained_requires`: what validation checks of a run on a pretrained base, not what it trains)
_NOT_IDENTITY = ("paths", "hardware", "callbacks", "ckpt_path", "name", "train", "logger", "pretrained_requires")
DONE = "DONE"


def compose_experiment(experiment: str, *overrides: str) -> DictConfig:
    """The resolved config of `experiment` as `run.py experiment=<experiment>` would compose it."""
    from hydra import compose, initialize_config_dir

    conf = Path(__file__).resolve().parents[1] / "conf"
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose("run", overrides=[f"experiment={experiment}", *overrides])
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return compose("run", overrides=[f"experiment={experiment}", *overrides])


#: the sections of a config that name a prerequisite by experiment or give it by path
_SECTIONS = ("teacher", "paradigm.generator_init")


def given_paths(cfg: DictConfig) -> dict[str, str]:
    """Weights folders given by path, by the experiment that makes them: `artifact_paths` plus every
    section of `_SECTIONS` that names both (absolute paths, so that identities do not depend on cwd)."""
    paths = cfg.get("artifact_paths")
    given = {str(k): str(v) for k, v in paths.items()} if paths else {}
    for key in _SECTIONS:
        section = OmegaConf.select(cfg, key)
        if section is not None and section.get("experiment") and section.get("path"):
            given[str(section.experiment)] = str(Path(str(section.path)).resolve())
    return given


def prerequisite_config(consumer: DictConfig, experiment: str) -> DictConfig:
    """The config of prerequisite `experiment` for a `consumer` run: the consumer's budget (so the
    whole chain trains at the study budget when asked) and pretrained base, world (but the prerequisite's own batch
    size), model size, seed, paths, weights given by path (`given_paths`: a teacher given to the
    consumer is the teacher of every prerequisite that names its experiment) and (for debugging
    runs) trainer; one device, so that it can run in-process."""
    cfg = compose_experiment(experiment, f"budget={consumer.get('budget_name', 'demo')}",
                             f"pretrained={consumer.get('pretrained_name', 'none')}")  # fmt: skip
    given = given_paths(consumer)
    with open_dict(cfg):
        if given:
            cfg.artifact_paths = given
            for key in _SECTIONS:
                section = OmegaConf.select(cfg, key)
                if section is not None and section.get("experiment") in given and not section.get("path"):
                    section.path = given[str(section.experiment)]
        own_batch = cfg.world.batch_size  # a training hyperparameter of the prerequisite's own recipe
        for key in ("world", "seed", "paths"):
            cfg[key] = consumer[key]
        cfg.world.batch_size = own_batch
        cfg.model.preset = consumer.model.preset
        cfg.model.overrides = consumer.model.overrides
        if consumer.trainer.get("fast_dev_run"):
            cfg.trainer = consumer.trainer
            cfg.world.batch_size = consumer.world.batch_size
            if "sample_steps" in consumer.paradigm:
                cfg.paradigm.sample_steps = consumer.paradigm.sample_steps
        cfg.hardware = OmegaConf.merge(consumer.hardware, {"devices": 1, "num_nodes": 1, "strategy": "auto"})
        cfg.trainer.enable_model_summary = False  # one console line says what is made, not a layer table
        cfg.ckpt_path = None
    return cfg


def carded_identity(path: str) -> str:
    """What weights given by path are, for an artifact's identity: the sha256 of a weights folder
    with a `card.json` (a shipped base: the same weights wherever the repository is, other weights
    after an update), else the path."""
    card = Path(path) / "card.json"
    return f"sha256:{json.loads(card.read_text())['sha256']}" if card.is_file() else path


def identity(cfg: DictConfig) -> str:
    """A short hash of what an artifact is (its resolved config without paths and hardware)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    for key in _NOT_IDENTITY:
        data.pop(key, None)
    if not data.get("artifact_paths"):  # nothing given by path: the identity of earlier stores
        data.pop("artifact_paths", None)
    else:
        data["artifact_paths"] = {name: carded_identity(path) for name, path in data["artifact_paths"].items()}
    for key in _SECTIONS:  # a given path handed down the chain (`prerequisite_config`): carded too
        section = OmegaConf.select(cfg, key)
        if section is not None and section.get("path"):
            node = data
            for part in key.split("."):
                node = node[part]
            node["path"] = carded_identity(str(section.path))
    for key in ("enable_progress_bar", "enable_model_summary"):  # console only
        data.get("trainer", {}).pop(key, None)
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def store_root(cfg: DictConfig) -> Path:
    """The artifact store of `cfg`: `paths.artifacts`, or `paths.fast_dev_run_artifacts` for a
    `trainer.fast_dev_run` (its prerequisites are trained for a step: never shared with real runs)."""
    if cfg.trainer.get("fast_dev_run"):
        return Path(cfg.paths.fast_dev_run_artifacts)
    return Path(cfg.paths.artifacts)


def store_dir(cfg: DictConfig, kind: str) -> Path:
    """`<store_root>/<experiment>/<kind>-<hash>` for the artifact of `cfg`."""
    return store_root(cfg) / str(cfg.experiment_name) / f"{kind}-{identity(cfg)}"


def _rank() -> int:
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def ensure(folder: Path, make: Callable[[Path], None], what: str, timeout_s: float = 24 * 3600) -> Path:
    """Return `folder` once it holds a finished artifact; make it on rank 0, others wait for it."""
    if (folder / DONE).is_file():
        log.info("artifact %s found: %s", what, folder)
        return folder
    if _rank() != 0:
        start = time.time()
        while not (folder / DONE).is_file():
            if time.time() - start > timeout_s:
                raise ConfigError(f"timed out waiting for rank 0 to make {what} in {folder}")
            time.sleep(2)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    # runs sharing a store (two sweeps, a sweep and a study) make each artifact once: whoever holds
    # the lock makes it, the others wait for it and then find it
    with open(folder / ".lock", "w") as lock:
        if not _try_lock(lock):
            log.info("artifact %s is being made by another run: waiting for %s", what, folder)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (folder / DONE).is_file():
                log.info("artifact %s found: %s", what, folder)
                return folder
            log.info("artifact %s missing: making it in %s", what, folder)
            make(folder)
            (folder / DONE).write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder


def _try_lock(lock: IO[str]) -> bool:
    """Take `lock`'s exclusive lock without waiting; False if another process holds it."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def trained_weights(consumer: DictConfig, experiment: str, role: str) -> Path:
    """Weights folder of `experiment`'s generator for `consumer` (trained first if missing, on the
    shapes world only)."""
    cfg = prerequisite_config(consumer, experiment)
    folder = store_dir(cfg, "weights")
    if not (folder / DONE).is_file() and consumer.world.name != "shapes":
        raise ConfigError(
            f"{role} is missing: make it with `python run.py experiment={experiment} world={consumer.world.name}` "
            f"and pass its exported weights folder as the {role} path"
        )

    def make(out: Path) -> None:
        with open_dict(cfg):
            cfg.paths.runs = str(out / "run")
            cfg.name = str(cfg.experiment_name)
        OmegaConf.save(cfg, out / "config.yaml", resolve=True)
        if _distributed_env():
            # inside torchrun/SLURM the prerequisite (one device) must not join this job's process
            # group: train it in a child process with a clean environment
            env = {k: v for k, v in os.environ.items() if k not in _DIST_VARS}
            subprocess.run([sys.executable, "-m", "lightning_modules.artifacts", str(out / "config.yaml")],
                           env=env, check=True, cwd=Path(__file__).resolve().parents[1])
        else:
            train_and_export(cfg, out)

    return ensure(folder, make, f"{role} ({experiment})") / "weights"


_DIST_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT",
              "TORCHELASTIC_RUN_ID", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_JOB_ID")


def _distributed_env() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or "SLURM_JOB_ID" in os.environ


def train_and_export(cfg: DictConfig, out: Path) -> None:
    """Train the prerequisite run of `cfg` (one device) and export its generator to `out/weights`."""
    from forcing.models.weights import save_pretrained
    from lightning_modules.launch import launch

    trainer = launch(cfg)
    save_pretrained(trainer.lightning_module.sampling_generator(), out / "weights")


if __name__ == "__main__":  # python -m lightning_modules.artifacts <out>/config.yaml
    request = Path(sys.argv[1])
    train_and_export(OmegaConf.load(request), request.parent)


def resolve_path(consumer: DictConfig, section: DictConfig, role: str) -> Path:
    """`section.path` if set (must exist), else the weights the run was given for `section.experiment`
    (`artifact_paths`, e.g. the shipped base of `pretrained=shapes_base`), else that experiment's artifact."""
    given = given_paths(consumer).get(str(section.experiment)) if section.get("experiment") else None
    if section.get("path") or given:
        path = Path(section.path or given)
        if not path.exists():
            hint = f" (made by `python run.py experiment={section.experiment}`)" if section.get("experiment") else ""
            raise ConfigError(f"{role} path {path} does not exist{hint}")
        return path
    if not section.get("experiment"):
        raise ConfigError(f"{role} needs a path or an experiment that makes it")
    return trained_weights(consumer, str(section.experiment), role)
