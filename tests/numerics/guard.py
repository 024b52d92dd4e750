"""The numerics guard (torchtitan style): fixed-seed short runs of every paradigm on the tiny backbone,
whose per-iteration logged training terms are recorded in `reference_losses.json`.

A refactor must reproduce them exactly on CPU (`test_numerics_guard.py`); a change meant to change the
numbers (a fidelity fix) rerecords them in a commit of its own that says why:

    python -m tests.numerics.guard            # rewrites tests/numerics/reference_losses.json
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import torch

from tests.suite.helpers import from_scratch, tiny_teacher

REFERENCE = Path(__file__).with_name("reference_losses.json")
ITERATIONS = 10

#: experiment -> its own overrides (on top of `common_overrides`); one row per paradigm
RUNS: dict[str, tuple[str, ...]] = {
    "shapes_teacher": ("paradigm.sample_steps=4",),  # many-step samplers: 4 steps (few-step ones have a fixed grid)
    "teacher_forcing": ("paradigm.sample_steps=4", "paradigm.generator_init.experiment=null"),  # from scratch
    "diffusion_forcing": ("paradigm.sample_steps=4", "paradigm.generator_init.experiment=null"),
    "ode_init": ("paradigm.num_pairs=6",),
    "self_forcing_dmd": ("paradigm.generator_init.experiment=null",),
    "self_forcing_gan": ("paradigm.generator_init.experiment=null",),
    "self_forcing_pp": ("paradigm.generator_init.experiment=null", "paradigm.rollout_frames=12"),
    "causal_ode": ("paradigm.num_pairs=6",),
}
#: experiments whose teacher is given as a random tiny backbone (no prerequisite is trained)
WITH_TEACHER = ("ode_init", "self_forcing_dmd", "self_forcing_gan", "self_forcing_pp", "causal_ode")


class TermRecorder(L.Callback):
    """Every logged `train/*` value of every training iteration, by key."""

    def __init__(self) -> None:
        self.terms: dict[str, list[float]] = {}

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:  # noqa: D102
        for key, value in sorted(trainer.callback_metrics.items()):
            if key.startswith("train/"):
                self.terms.setdefault(key, []).append(float(value))


def common_overrides(tmp: Path) -> list[str]:
    """Tiny backbone, small world, no evaluation, samples or checkpoints, everything under `tmp`."""
    return [
        "model=tiny", f"paths.runs={tmp / 'runs'}", f"paths.artifacts={tmp / 'artifacts'}", "seed=0",
        f"trainer.max_steps={ITERATIONS}", "trainer.log_every_n_steps=1", "trainer.val_check_interval=1000",
        "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
        "callbacks.checkpoint_every_n_steps=1000", "callbacks.samples_every_n_steps=0",
        "callbacks.eval_every_n_steps=0", "callbacks.eval_at_start=false",
        "world.batch_size=2", "world.val_batch_size=2", "world.val_size=2", "world.num_frames=6",
    ]  # fmt: skip


def run_terms(experiment: str, tmp: Path) -> dict[str, list[float]]:
    """The per-iteration `train/*` terms of the guard's run of `experiment` (files under `tmp`)."""
    from hydra import compose, initialize_config_dir

    from forcing.eval._threads import torch_threads
    from lightning_modules.launch import launch

    overrides = [f"experiment={experiment}", *common_overrides(tmp), *RUNS[experiment]]
    if experiment in WITH_TEACHER:
        overrides.append(f"teacher.path={tiny_teacher(tmp / 'teacher')}")
    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("run", overrides=from_scratch(overrides))
    recorder = TermRecorder()
    with torch_threads(1):
        launch(cfg, extra_callbacks=[recorder])
    return recorder.terms


def record(path: Path = REFERENCE) -> dict[str, dict[str, list[float]]]:
    """Run every guard run and write the reference file."""
    reference: dict[str, dict[str, list[float]]] = {}
    for experiment in RUNS:
        with tempfile.TemporaryDirectory(prefix=f"numerics-{experiment}-") as tmp:
            terms = run_terms(experiment, Path(tmp))
        if not terms or not all(math.isfinite(v) for values in terms.values() for v in values):
            raise RuntimeError(f"{experiment}: no or non-finite terms {terms}")
        reference[experiment] = terms
        print(f"{experiment}: {', '.join(f'{k} {v[-1]:.5g}' for k, v in terms.items())}", file=sys.stderr)
    meta = {"torch": torch.__version__, "iterations": ITERATIONS, "threads": 1}
    path.write_text(json.dumps({"meta": meta, "runs": reference}, indent=1) + "\n")
    return reference


if __name__ == "__main__":
    record()
