"""Every experiment runs one step under FSDP2 (2 gloo processes, sharded per block) with the
same first-step loss on rank 0 as a single-process run (rank 0 sees the single process's data
and noise; initialisation is identical on every rank)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from lightning_modules.launch import launch
from tests.suite.helpers import EXPERIMENTS, ROOT, LossRecorder, compose_run, fast_overrides


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def fsdp2_losses(tmp_path_factory) -> dict[str, float]:
    tmp = tmp_path_factory.mktemp("fsdp2")
    out = tmp / "losses.json"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        "tests/suite/fsdp2_worker.py", str(out), str(tmp), *EXPERIMENTS,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_fsdp2_step_matches_single_process(experiment: str, fsdp2_losses, tmp_path) -> None:
    cfg = compose_run(f"experiment={experiment}", *fast_overrides(tmp_path))
    recorder = LossRecorder()
    launch(cfg, extra_callbacks=[recorder])
    assert fsdp2_losses[experiment] == pytest.approx(recorder.losses[0], rel=1e-4, abs=1e-6)
