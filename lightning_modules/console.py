"""The console of a run: Lightning's tips and warnings that do not apply here filtered by message,
one handler per log line (Hydra's), the run's log file, and one summary line at the end.

Only the messages listed below are silenced; every other warning is shown.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("forcing")

#: Lightning log messages that advertise other products (litlogger, litmodels), by their start
QUIET_LOGS = ("💡 Tip:",)
#: Lightning warnings that do not apply to this suite (regular expressions matched at their start)
QUIET_WARNINGS = (
    # manual optimisation (two optimisers): a checkpoint holds the state after the step, which is the
    # state a resumed run continues from (tests/suite/test_resume.py)
    "Using ModelCheckpoint with manual optimization",
    # the frozen text encoder and codec are in eval mode on purpose
    r"Found \d+ module\(s\) in eval mode at the start of training",
    # Lightning 2.6 on torch >= 2.10: an internal deprecation no user of this suite can act on
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
#: eval scalars of the summary line (at the first and the last horizon evaluated)
SUMMARY_METRICS = ("fvd", "stability", "alignment", "motion")


class _DropPrefixes(logging.Filter):
    """Drop log records whose message starts with one of `prefixes`."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        return not str(record.getMessage()).startswith(self.prefixes)


def quiet_lightning() -> None:
    """Filter `QUIET_LOGS` and `QUIET_WARNINGS`; with a root handler (Hydra's), drop Lightning's own
    console handler, which printed every Lightning line twice. Idempotent."""
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropPrefixes) for f in rank_zero.filters):
        rank_zero.addFilter(_DropPrefixes(QUIET_LOGS))
    root = logging.getLogger()
    if root.handlers:
        lightning = logging.getLogger("lightning")
        for handler in list(lightning.handlers):
            if type(handler) is logging.StreamHandler:
                lightning.removeHandler(handler)


@contextmanager
def log_file(path: Path, enabled: bool = True) -> Iterator[None]:
    """Copy the run's log records to `path` (Hydra writes no log file of its own) while inside."""
    if not enabled:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def duration(seconds: float) -> str:
    """'1 h 02 min', '3 min 12 s' or '8.4 s'."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.1f} s"


def eval_summary(scalars: dict[str, float] | None) -> str:
    """`SUMMARY_METRICS` at the first and the last horizon of an evaluation's scalars."""
    if not scalars:
        return ""
    horizons = sorted({k.rsplit("@", 1)[1] for k in scalars if "@" in k}, key=lambda h: float(h.rstrip("x")))
    keys = [f"eval/{m}@{h}" for h in dict.fromkeys([*horizons[:1], *horizons[-1:]]) for m in SUMMARY_METRICS]
    return " ".join(f"{k.removeprefix('eval/')}={scalars[k]:.4g}" for k in keys if k in scalars)


def summary_line(trainer: Any, run_dir: Path, iterations: int, started: float) -> str:
    """One line: run directory, iterations and optimiser steps, wall time, last val/loss and eval scalars."""
    parts = [f"done: {run_dir}", f"{iterations} iterations ({trainer.global_step} optimiser steps)",
             duration(time.time() - started)]  # fmt: skip
    val = trainer.callback_metrics.get("val/loss")
    if val is not None:
        parts.append(f"val/loss={float(val):.4g}")
    evaluation = next((cb for cb in trainer.callbacks if hasattr(cb, "last_scalars")), None)
    scores = eval_summary(getattr(evaluation, "last_scalars", None))
    if scores:
        parts.append(f"eval {scores} (all: {run_dir / 'eval' / 'metrics.jsonl'})")
    return ", ".join(parts)
