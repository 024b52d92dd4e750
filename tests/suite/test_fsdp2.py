"""Every experiment runs under FSDP2 (2 gloo processes, sharded per block).

Flow-matching experiments must give the same losses as a single process with the same
`world.batch_size` (the global batch): the ranks' micro-batches together are exactly the single
process's batch (clips and per-clip noise), gradients are averaged over ranks, so the mean of the ranks' losses must match
at the first step and after an optimiser update. Distillation experiments (two optimisers, one
batch-level generator for the objective's timesteps) must run a step with finite losses."""

from __future__ import annotations

import json
import math

import pytest

from lightning_modules.launch import launch
from tests.suite.helpers import DENOISING, EXPERIMENTS, LossRecorder, compose_run, fast_overrides, torchrun

STEPS = 2
# a large first update so that the second step's loss depends on the (sharded) gradients
STEP_OVERRIDES = (f"trainer.fast_dev_run={STEPS}", "optim.warmup_steps=1", "optim.lr=0.01", "world.batch_size=4")


@pytest.fixture(scope="module")
def fsdp2_losses(tmp_path_factory) -> dict[str, list[float]]:
    tmp = tmp_path_factory.mktemp("fsdp2")
    out = tmp / "losses"
    torchrun("tests/suite/fsdp2_worker.py", str(out), str(tmp), *STEP_OVERRIDES, "--", *EXPERIMENTS)
    ranks = [json.loads((tmp / f"losses.rank{r}.json").read_text()) for r in range(2)]
    return {name: [(a + b) / 2 for a, b in zip(ranks[0][name], ranks[1][name])] for name in ranks[0]}


@pytest.mark.parametrize("experiment", DENOISING)
def test_fsdp2_step_matches_single_process(experiment: str, fsdp2_losses, tmp_path) -> None:
    cfg = compose_run(f"experiment={experiment}", *fast_overrides(tmp_path), *STEP_OVERRIDES)
    recorder = LossRecorder()
    launch(cfg, extra_callbacks=[recorder])
    assert len(recorder.losses) == STEPS == len(fsdp2_losses[experiment])
    assert fsdp2_losses[experiment] == pytest.approx(recorder.losses, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if e not in DENOISING])
def test_fsdp2_distillation_step_runs(experiment: str, fsdp2_losses) -> None:
    assert fsdp2_losses[experiment] and all(math.isfinite(x) for x in fsdp2_losses[experiment])
