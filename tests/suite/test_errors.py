"""Bad input is a clear one-line error before any training starts, and nothing is overwritten."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra.errors import ConfigCompositionException

from forcing.errors import ConfigError
from lightning_modules.launch import launch
from tests.suite.helpers import ROOT, compose_run, fast_overrides, from_scratch


def run_cli(*args: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "run.py", *from_scratch(args), f"paths.runs={tmp_path}/runs", "debug=fast"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def test_unknown_experiment_and_key_fail_at_composition() -> None:
    with pytest.raises(ConfigCompositionException, match="nope"):
        compose_run("experiment=nope")
    with pytest.raises(ConfigCompositionException, match="not_a_key"):
        compose_run("trainer.not_a_key=1")
    with pytest.raises(ConfigCompositionException, match="hardware"):
        compose_run("hardware=quantum")


def test_frames_not_dividing_into_blocks(tmp_path) -> None:
    cfg = compose_run("experiment=teacher_forcing", "world.num_frames=10", *fast_overrides(tmp_path))
    with pytest.raises(ConfigError, match="does not divide into blocks"):
        launch(cfg)
    assert not (tmp_path / "runs").exists()  # nothing was written


def test_incompatible_objective(tmp_path) -> None:
    cfg = compose_run("experiment=teacher_forcing", "objective.name=dmd", *fast_overrides(tmp_path))
    with pytest.raises(ConfigError, match="cannot train with objective"):
        launch(cfg)


def test_fresh_run_refuses_to_overwrite_checkpoints(tmp_path) -> None:
    cfg = compose_run("experiment=teacher_forcing", *fast_overrides(tmp_path))
    ckpt_dir = tmp_path / "runs" / cfg.name / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    (ckpt_dir / "last.ckpt").write_bytes(b"earlier run")
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        launch(cfg)
    assert (ckpt_dir / "last.ckpt").read_bytes() == b"earlier run"


def test_corrupt_checkpoint(tmp_path) -> None:
    cfg = compose_run("experiment=teacher_forcing", "ckpt_path=auto", *fast_overrides(tmp_path))
    ckpt_dir = tmp_path / "runs" / cfg.name / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    (ckpt_dir / "last.ckpt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ConfigError, match="corrupt"):
        launch(cfg)


def test_cli_errors_are_one_line(tmp_path) -> None:
    out = run_cli("experiment=teacher_forcing", "world.num_frames=10", tmp_path=tmp_path)
    assert out.returncode == 2
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
    assert lines[-1].startswith("error: ") and "frames_per_block=3" in lines[-1]
    assert len(lines) == 1


def test_generator_init_of_another_block_size(tmp_path) -> None:
    """A frame-wise student initialised from the chunk-wise ODE init is refused before anything is made."""
    cfg = compose_run(
        "experiment=self_forcing_dmd_framewise", "paradigm.generator_init.experiment=ode_init", *fast_overrides(tmp_path)
    )
    with pytest.raises(ConfigError, match="ode_init trains frames_per_block=3, but this student has frames_per_block=1"):
        launch(cfg)
    assert not (tmp_path / "runs").exists() and not any(tmp_path.glob("**/weights-*"))


def test_requeued_slurm_job_resumes_instead_of_refusing(tmp_path, monkeypatch) -> None:
    """A SLURM job requeued after a timeout (SLURM_RESTART_COUNT > 0) continues its run directory
    with ckpt_path=null; the first start of a job still refuses to overwrite it."""
    import torch

    from lightning_modules.launch import resolve_ckpt_path, run_dir_of

    cfg = compose_run("experiment=teacher_forcing", *fast_overrides(tmp_path))
    ckpt_dir = run_dir_of(cfg) / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    torch.save({"state_dict": {}}, ckpt_dir / "step000002.ckpt")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        resolve_ckpt_path(cfg, run_dir_of(cfg))
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert resolve_ckpt_path(cfg, run_dir_of(cfg)) == str(ckpt_dir / "step000002.ckpt")
