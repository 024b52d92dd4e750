"""Compare runs: TensorBoard event files -> a markdown table in the papers' layout and PNG plots.

    python experiments/compare.py RUN_DIR [RUN_DIR ...] [--out DIR] [--keys eval/stability@1x ...]
    python experiments/compare.py --sweep DIR [--out DIR] [--with-start]

A run is a directory holding `events.out.tfevents.*` files (its name is the run name); a sweep
directory holds runs in its subdirectories (found recursively). For every run the last value
(highest step) of each scalar is taken. The table has one row per run (run, paradigm,
experiment) and metric columns grouped by horizon: stability, drift, motion, alignment, FVD at
each horizon found (1x, 5x, 10x, 20x), then `train/loss` and `val/loss`. Plots: stability against
horizon, and error accumulation over frames from the runs' `eval/curves.jsonl` (written by the
StreamingEvaluation callback) where present. Written to --out: comparison.md, scalars.csv, PNGs.
`--with-start` adds, for every run evaluated more than once, a row "<run> @start" with its first
evaluation (the initial generator of a distillation run: the "before" of a before/after study).

Importable: `compare(run_dirs, out_dir, keys=None) -> (markdown, plots)`.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from matplotlib.figure import Figure

#: Metric groups of the table, in order (each at every horizon found).
GROUPS: tuple[str, ...] = ("stability", "drift_brightness", "motion", "alignment", "fvd")
#: Training scalars appended to the table when present.
TRAIN_KEYS: tuple[str, ...] = ("train/loss", "val/loss")
#: Curves of the error-accumulation plot: (name, y label, ideal value).
CURVES: tuple[tuple[str, str, float], ...] = (
    ("stability", "visual stability (0-100)", 100.0),
    ("drift_brightness", "brightness drift", 0.0),
    ("motion", "motion (speed ratio)", 1.0),
    ("count_error", "count error", 0.0),
)
EVAL_KEY = re.compile(r"^eval/(?P<name>[a-z_]+)@(?P<horizon>[0-9.]+)x$")
EVENTS_GLOB = "events.out.tfevents.*"


# ---------------------------------------------------------------------- reading runs
def find_runs(sweep: str | Path) -> list[Path]:
    """Run directories (holding event files) under a sweep directory, sorted by path."""
    sweep = Path(sweep)
    return sorted({p.parent for p in sweep.rglob(EVENTS_GLOB) if p.is_file()})


def last_scalars(run_dir: str | Path) -> dict[str, float]:
    """Last value (highest step, then latest write) of every scalar in the run's event files."""
    return scalars_at(run_dir, "last")


def scalars_at(run_dir: str | Path, which: str = "last") -> dict[str, float]:
    """Every scalar of the run at its last step ("last"), or the `eval/*` scalars of its first
    evaluation ("first": the initial generator of a run evaluated at start, e.g. the ODE init of a
    DMD run)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if which not in ("first", "last"):
        raise ValueError(f"which must be 'first' or 'last', not {which!r}")
    acc = EventAccumulator(
        str(run_dir), size_guidance={"scalars": 0, "images": 1, "histograms": 1, "tensors": 1, "audio": 1}
    )
    acc.Reload()
    out: dict[str, float] = {}
    for tag in acc.Tags().get("scalars", []):
        events = acc.Scalars(tag)
        if which == "first":
            if events and tag.startswith("eval/"):
                out[tag] = float(min(events, key=lambda e: (e.step, e.wall_time)).value)
        elif events:
            out[tag] = float(max(events, key=lambda e: (e.step, e.wall_time)).value)
    # runs evaluated without a TensorBoard logger: fall back on the callback's JSON lines
    record = _jsonl(Path(run_dir) / "eval" / "metrics.jsonl", which)
    for key, value in (record or {}).items():
        if key.startswith("eval/") and key not in out and isinstance(value, (int, float)):
            out[key] = float(value)
    return out


def eval_steps(run_dir: str | Path) -> list[int]:
    """Global steps at which the run was evaluated (from its `eval/*` scalars), sorted."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = [t for t in acc.Tags().get("scalars", []) if t.startswith("eval/")]
    return sorted({e.step for t in tags for e in acc.Scalars(t)})


def _jsonl(path: Path, which: str = "last") -> dict[str, Any] | None:
    """The first or last record of a JSON-lines file (None if missing or empty)."""
    if not path.is_file():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        return None
    return json.loads(lines[0] if which == "first" else lines[-1])


def run_info(run_dir: Path) -> dict[str, str]:
    """Paradigm and experiment names from the run's resolved config.yaml (blank if absent)."""
    info = {"paradigm": "", "experiment": ""}
    path = run_dir / "config.yaml"
    if path.is_file():
        import yaml

        cfg = yaml.safe_load(path.read_text()) or {}
        paradigm, objective = cfg.get("paradigm") or {}, cfg.get("objective") or {}
        info["paradigm"] = str(paradigm.get("name", ""))
        experiment = str(cfg.get("experiment_name", ""))
        if objective.get("name") not in (None, "none"):
            experiment += f" ({objective['name']})"
        info["experiment"] = experiment
    return info


# ---------------------------------------------------------------------- table
def horizons_of(keys: Sequence[str]) -> list[str]:
    """Horizon tags ("1x", "5x", ...) of eval keys, in numeric order."""
    found = {m["horizon"] for k in keys if (m := EVAL_KEY.match(k))}
    return [f"{h}x" for h in sorted(found, key=float)]


def table_keys(scalars: Sequence[dict[str, float]]) -> list[str]:
    """Default columns: GROUPS at every horizon (present in some run), then TRAIN_KEYS."""
    present = set().union(*scalars) if scalars else set()
    keys = [f"eval/{g}@{h}" for g in GROUPS for h in horizons_of(sorted(present))]
    return [k for k in keys if k in present] + [k for k in TRAIN_KEYS if k in present]


def _fmt(key: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if "stability" in key:
        return f"{value:.1f}"
    if "loss" in key:
        return f"{value:.4g}"
    return f"{value:.3f}"


def _header(key: str) -> str:
    m = EVAL_KEY.match(key)
    return f"{m['name']} {m['horizon']}x" if m else key


class Row(NamedTuple):
    """One table row: a run at its last step, or at its first evaluation (`label` "<run> @start")."""

    run: Path
    which: str = "last"

    @property
    def label(self) -> str:
        return self.run.name if self.which == "last" else f"{self.run.name} @start"


def rows_of(runs: Sequence[Path], with_start: bool = False) -> list[Row]:
    """A row per run; with `with_start`, runs evaluated more than once also get their first
    evaluation as a row just before (the initial generator: "before" in a before/after study)."""
    rows: list[Row] = []
    for run in runs:
        if with_start and len(eval_steps(run)) > 1:
            rows.append(Row(run, "first"))
        rows.append(Row(run))
    return rows


def markdown_table(rows: Sequence[Row], scalars: Sequence[dict[str, float]], keys: Sequence[str]) -> str:
    """One row per run (run, paradigm, experiment), then one column per key."""
    head = ["run", "paradigm", "experiment", *(_header(k) for k in keys)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * len(keys)) + "|"]
    for row, values in zip(rows, scalars):
        info = run_info(row.run)
        cells = [row.label, info["paradigm"], info["experiment"], *(_fmt(k, values.get(k)) for k in keys)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: Sequence[Row], scalars: Sequence[dict[str, float]]) -> Path:
    """Every scalar of every row."""
    keys = sorted(set().union(*scalars)) if scalars else []
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", *keys])
        for row, values in zip(rows, scalars):
            writer.writerow([row.label, *(values.get(k, "") for k in keys)])
    return path


# ---------------------------------------------------------------------- plots
def plot_stability_vs_horizon(rows: Sequence[Row], scalars: Sequence[dict[str, float]], path: Path) -> Path:
    """Stability against horizon, one line per row."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for row, values in zip(rows, scalars):
        points = sorted(
            (float(m["horizon"]), v)
            for k, v in values.items()
            if (m := EVAL_KEY.match(k)) and m["name"] == "stability"
        )
        if points:
            ax.plot(*zip(*points), marker="o", ls="--" if row.which == "first" else "-", label=row.label)
    horizons = sorted({x for line in ax.lines for x in line.get_xdata()})
    if horizons:
        ax.set_xticks(horizons, [f"{h:g}x" for h in horizons])
    ax.set_xlabel("horizon (x training length)")
    ax.set_ylabel("visual stability (0-100)")
    ax.set_title("stability against horizon")
    if ax.lines:
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=100)
    return path


def plot_error_accumulation(rows: Sequence[Row], path: Path) -> Path | None:
    """Per-frame curves of each row's evaluation (eval/curves.jsonl); None if no row has them."""
    records = [(row, _jsonl(row.run / "eval" / "curves.jsonl", row.which)) for row in rows]
    records = [(row, rec) for row, rec in records if rec and rec.get("curves")]
    if not records:
        return None
    fig = Figure(figsize=(10, 6), layout="constrained")
    for i, (name, label, ideal) in enumerate(CURVES):
        ax = fig.add_subplot(2, 2, i + 1)
        for row, rec in records:
            curve = [math.nan if v is None else v for v in rec["curves"].get(name, [])]
            ax.plot(curve, lw=1.2, ls="--" if row.which == "first" else "-", label=f"{row.label} ({rec.get('mode', '')})")
        ax.axhline(ideal, color="grey", lw=0.8, ls="--")
        train_frames = int(records[0][1].get("train_frames") or 0)
        longest = max(len(rec["curves"].get(name, [])) for _, rec in records)
        for k in range(train_frames, longest, train_frames or longest + 1):
            ax.axvline(k - 0.5, color="grey", lw=0.5, ls=":")
        ax.set_xlabel("frame")
        ax.set_ylabel(label)
    fig.axes[0].legend(fontsize="small")
    fig.suptitle("error accumulation over frames")
    fig.savefig(path, dpi=100)
    return path


# ---------------------------------------------------------------------- entry points
def compare(
    run_dirs: Sequence[str | Path], out_dir: str | Path, keys: Sequence[str] | None = None, with_start: bool = False
) -> tuple[str, list[Path]]:
    """Write comparison.md, scalars.csv and the plots to `out_dir`; returns (markdown, plot paths).

    With `with_start`, a run evaluated more than once also gets a row for its first evaluation."""
    runs = [Path(r) for r in run_dirs]
    if not runs:
        raise ValueError("no runs to compare (no directory with events.out.tfevents files)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = rows_of(runs, with_start)
    scalars = [scalars_at(row.run, row.which) for row in rows]
    markdown = markdown_table(rows, scalars, list(keys) if keys else table_keys(scalars))
    (out / "comparison.md").write_text(markdown)
    write_csv(out / "scalars.csv", rows, scalars)
    plots = [plot_stability_vs_horizon(rows, scalars, out / "stability_vs_horizon.png")]
    accumulation = plot_error_accumulation(rows, out / "error_accumulation.png")
    if accumulation is not None:
        plots.insert(0, accumulation)
    return markdown, plots


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: print the table, write the files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="run directories")
    parser.add_argument("--sweep", type=Path, help="a sweep directory (its run subdirectories)")
    parser.add_argument(
        "--out", type=Path, help="output directory (default: SWEEP/comparison or ./comparison)"
    )
    parser.add_argument(
        "--keys", nargs="+", help="table columns (default: stability, drift, motion, alignment, fvd)"
    )
    parser.add_argument(
        "--with-start", action="store_true",
        help="also a row for each run's first evaluation (the initial generator: before/after studies)",
    )
    args = parser.parse_args(argv)
    runs = list(args.runs) + (find_runs(args.sweep) if args.sweep else [])
    if not runs:
        parser.error("give run directories or --sweep DIR (with events.out.tfevents files)")
    out = args.out or ((args.sweep / "comparison") if args.sweep else Path("comparison"))
    markdown, plots = compare(runs, out, args.keys, with_start=args.with_start)
    print(markdown)
    for plot in plots:
        print(plot)


if __name__ == "__main__":
    main()
