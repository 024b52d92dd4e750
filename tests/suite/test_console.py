"""The console of a run, as a user sees it: no cloud tips or warnings that do not apply, no layer table
for prerequisites, a progress bar over the run's iterations and one summary line at the end."""

from __future__ import annotations

import subprocess
import sys

from omegaconf import OmegaConf

from lightning_modules.artifacts import identity, prerequisite_config
from tests.suite.helpers import ROOT, compose_run, from_scratch, tiny_teacher

SMALL = ("model=tiny", "world.batch_size=2", "world.val_batch_size=2", "world.val_size=2", "world.num_frames=6",
         "callbacks.eval_every_n_steps=0", "callbacks.samples_every_n_steps=0")  # fmt: skip


def run_cli(tmp_path, *args: str) -> str:
    out = subprocess.run([sys.executable, "run.py", *from_scratch(args), *SMALL, f"paths.runs={tmp_path}/runs",
                          f"paths.artifacts={tmp_path}/artifacts"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


def test_prerequisite_console_and_summary_line(tmp_path) -> None:
    """Teacher Forcing makes its base first: one layer table (the run's own), a bar "train: n/2" and a
    closing "done:" line naming the run directory."""
    text = run_cli(tmp_path, "experiment=teacher_forcing", "trainer.fast_dev_run=2", "paradigm.sample_steps=4")
    assert "artifact base model (paradigm.generator_init) (shapes_teacher) missing" in text
    assert text.count("Total params") == 1
    assert "Tip:" not in text and "litlogger" not in text
    assert "2/2" in text and "train:" in text
    last = [ln for ln in text.splitlines() if ln.strip()][-1]
    assert last.startswith("done: ") and "teacher_forcing" in last and "2 iterations" in last


def test_manual_optimisation_run_has_no_checkpoint_warning(tmp_path) -> None:
    teacher = tiny_teacher(tmp_path / "teacher")
    text = run_cli(tmp_path, "experiment=self_forcing_dmd", f"teacher.path={teacher}",
                   "paradigm.generator_init.experiment=null", "trainer.max_steps=2",
                   "callbacks.checkpoint_every_n_steps=1", "trainer.val_check_interval=1000")  # fmt: skip
    assert "ModelCheckpoint with manual optimization" not in text and "Warning" not in text
    assert "done: " in text and "2 iterations" in text


def test_console_settings_are_not_part_of_an_artifacts_identity() -> None:
    sf = compose_run("experiment=self_forcing_dmd")
    ode = prerequisite_config(sf, "ode_init")
    assert ode.trainer.enable_model_summary is False
    loud = OmegaConf.merge(ode, {"trainer": {"enable_model_summary": True, "enable_progress_bar": False}})
    assert identity(loud) == identity(ode)
