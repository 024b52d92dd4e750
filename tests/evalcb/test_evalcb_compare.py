"""experiments/compare.py turns a sweep of runs into a markdown table and plots."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from tests.suite.helpers import ROOT

SCRIPT = ROOT / "experiments" / "compare.py"


def _compare_module():
    spec = importlib.util.spec_from_file_location("compare", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sweep_to_table_and_plots(eval_sweep: Path, tmp_path: Path) -> None:
    compare = _compare_module()
    runs = compare.find_runs(eval_sweep)
    assert [r.name for r in runs] == ["df", "teacher", "tf"]
    markdown, plots = compare.compare(runs, tmp_path / "out")
    lines = markdown.strip().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:3] == ["run", "paradigm", "experiment"]
    expected = [
        f"{g} {h}"
        for g in ("stability", "drift_brightness", "motion", "alignment", "fvd")
        for h in ("1x", "2x")
    ]
    assert header[3:] == [*expected, "train/loss"]
    rows = lines[2:]
    assert len(rows) == 3
    teacher = [c.strip() for c in rows[1].strip("|").split("|")]
    assert teacher[:3] == ["teacher", "teacher", "shapes_teacher (fm)"]
    assert teacher[header.index("stability 2x")] == "-"  # the teacher cannot stream: 1x only
    assert {p.name for p in plots} == {"error_accumulation.png", "stability_vs_horizon.png"}
    assert all(p.stat().st_size > 0 for p in plots)
    assert (tmp_path / "out" / "comparison.md").read_text() == markdown


def test_cli_with_keys(eval_sweep: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(eval_sweep / "tf"),
            str(eval_sweep / "df"),
            "--out",
            str(tmp_path),
            "--keys",
            "eval/stability@1x",
            "train/loss",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = out.strip().splitlines()
    assert lines[0] == "| run | paradigm | experiment | stability 1x | train/loss |"
    assert lines[2].startswith("| tf | tf |") and lines[3].startswith("| df | df |")
    assert (tmp_path / "stability_vs_horizon.png").is_file()


def _write_run(run: Path, evals: dict[int, float], train_loss: float) -> None:
    """A run with `eval/stability@1x` at each step of `evals` and one train/loss."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run))
    for step, value in evals.items():
        writer.add_scalar("eval/stability@1x", value, step)
    writer.add_scalar("train/loss", train_loss, max(evals))
    writer.close()


def test_with_start_adds_the_first_evaluation(tmp_path: Path) -> None:
    """Before/after rows: a run evaluated at start and end gives "<run> @start" (first values,
    no training scalars) and "<run>" (last values); a run evaluated once gives one row."""
    compare = _compare_module()
    _write_run(tmp_path / "runs" / "sf", {0: 10.0, 120: 40.0}, 0.5)
    _write_run(tmp_path / "runs" / "tf", {500: 25.0}, 0.2)
    runs = compare.find_runs(tmp_path / "runs")
    markdown, _ = compare.compare(runs, tmp_path / "out", ["eval/stability@1x", "train/loss"], with_start=True)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in markdown.strip().splitlines()[2:]]
    assert [(r[0], r[3], r[4]) for r in rows] == [
        ("sf @start", "10.0", "-"),
        ("sf", "40.0", "0.5"),
        ("tf", "25.0", "0.2"),
    ]
    plain, _ = compare.compare(runs, tmp_path / "plain", ["eval/stability@1x"])
    assert [line.split("|")[1].strip() for line in plain.strip().splitlines()[2:]] == ["sf", "tf"]
