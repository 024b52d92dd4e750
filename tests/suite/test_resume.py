"""Resuming from a mid-run checkpoint continues with the same losses as an uninterrupted run."""

from __future__ import annotations

import torch

from lightning_modules.launch import launch
from tests.suite.helpers import LossRecorder, compose_run


def run(tmp_path, name: str, max_steps: int, *extra: str) -> list[float]:
    cfg = compose_run(
        "experiment=teacher_forcing",
        "model=tiny",
        f"paths.runs={tmp_path / 'runs'}",
        f"name={name}",
        f"trainer.max_steps={max_steps}",
        "trainer.log_every_n_steps=1",
        "trainer.val_check_interval=1000",
        "trainer.enable_progress_bar=false",
        "callbacks.checkpoint_every_n_steps=2",
        "callbacks.samples_every_n_steps=0",
        "world.batch_size=2",
        *extra,
    )
    recorder = LossRecorder()
    launch(cfg, extra_callbacks=[recorder])
    return recorder.losses


def test_resume_continues_identically(tmp_path) -> None:
    full = run(tmp_path, "full", 4)
    first = run(tmp_path, "split", 2)
    assert (tmp_path / "runs" / "split" / "checkpoints" / "last.ckpt").is_file()
    second = run(tmp_path, "split", 4, "ckpt_path=auto")
    assert len(full) == 4 and len(first) == 2 and len(second) == 2
    torch.testing.assert_close(torch.tensor(first + second), torch.tensor(full), rtol=0, atol=1e-6)
    ckpt = torch.load(tmp_path / "runs" / "split" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["hyper_parameters"]["config"]["name"] == "split"  # resolved config in every checkpoint
    assert ckpt["global_step"] == 4 and ckpt["iteration"] == 4 and ckpt["optimizer_states"]
