"""A tiny Teacher Forcing run trained for 2 steps, shared by the generation tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_modules.launch import launch
from tests.suite.helpers import compose_run

HORIZON = 6  # training length in latent frames (2 blocks of 3)


def tiny_run(tmp: Path, experiment: str, name: str, iterations: int, frames: int) -> Path:
    """Run directory of `experiment` on the tiny backbone trained for `iterations` (16x16 frames, 2
    sampling steps, a checkpoint at the end, no evaluation or samples)."""
    cfg = compose_run(
        f"experiment={experiment}", "model=tiny", f"paths.runs={tmp / 'runs'}", f"paths.artifacts={tmp / 'artifacts'}",
        f"name={name}", f"trainer.max_steps={iterations}", "trainer.val_check_interval=1000",
        "trainer.enable_progress_bar=false", f"callbacks.checkpoint_every_n_steps={iterations}",
        "callbacks.samples_every_n_steps=0", "callbacks.eval_every_n_steps=0", f"world.num_frames={frames}",
        "world.height=16", "world.width=16", "world.batch_size=2", "paradigm.sample_steps=2",
    )
    launch(cfg)
    run_dir = tmp / "runs" / name
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    return run_dir


@pytest.fixture(scope="session")
def tf_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run directory of a tiny TF model trained for 2 steps (2 sampling steps, 16x16 frames)."""
    return tiny_run(tmp_path_factory.mktemp("tf_run"), "teacher_forcing", "tf_tiny", 2, HORIZON)


@pytest.fixture(scope="session")
def teacher_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run directory of a tiny bidirectional teacher trained for 1 step (3 frames, 2 sampling steps)."""
    return tiny_run(tmp_path_factory.mktemp("teacher_run"), "shapes_teacher", "teacher_tiny", 1, 3)


@pytest.fixture(scope="session")
def self_forcing_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Lightning-style checkpoint of an untrained tiny Self Forcing module (few-step sampler, EMA)."""
    import torch

    from lightning_modules.self_forcing import SelfForcing

    cfg = compose_run(
        "experiment=df_dmd",
        "model=tiny",
        f"world.num_frames={HORIZON}",
        "world.height=16",
        "world.width=16",
    )
    module = SelfForcing(cfg)
    module.configure_model()
    path = tmp_path_factory.mktemp("sf") / "sf.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path
