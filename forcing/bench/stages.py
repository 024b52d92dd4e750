"""Benchmark stages: a wall-clock budget, stage records written as JSON the moment they change, and
:func:`run_stage` (an exception ends the stage as "error", not the run).

A stage that runs out of time skips its remaining rows instead of being killed mid-row, and every
row is on disk as soon as it is measured: a run cut short (an outer `timeout`) keeps what it measured.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Budget", "StageRecord", "error_line", "run_stage"]


def error_line(error: BaseException) -> str:
    """`Type: first line of the message` (at most 300 characters), for a JSON record."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0][:300] if lines else ''}"


@dataclass
class Budget:
    """Seconds left until a deadline fixed at creation (`seconds` from now)."""

    seconds: float
    start: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        """Seconds left (negative once the deadline has passed)."""
        return self.seconds - (time.monotonic() - self.start)

    def fits(self, estimate_s: float) -> bool:
        """Whether work estimated at `estimate_s` seconds ends before the deadline."""
        return estimate_s <= self.remaining()

    def share(self, seconds: float) -> Budget:
        """A sub-budget of `seconds` from now, never past this budget's deadline."""
        return Budget(min(seconds, max(self.remaining(), 0.0)))


@dataclass
class StageRecord:
    """One stage's JSON file `<out>/<name>.json`: settings, rows, skipped rows, summary and status.

    status: "running" while rows are added (the file is rewritten after each), then "done",
    "partial" (some rows skipped for time) or "error" (an exception ended the stage).
    """

    out: Path
    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    error: str | None = None

    @property
    def path(self) -> Path:
        """Where the stage's JSON is written."""
        return self.out / f"{self.name}.json"

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of the stage."""
        return {
            "stage": self.name,
            "status": self.status,
            "settings": self.settings,
            "rows": self.rows,
            "skipped": self.skipped,
            "summary": self.summary,
            "error": self.error,
        }

    def write(self) -> None:
        """Write the stage's JSON now (atomically: a reader never sees half a file)."""
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(self.path)

    def add(self, row: dict[str, Any]) -> None:
        """Record a measured row and write the file."""
        self.rows.append(row)
        self.write()

    def skip(self, reason: str) -> None:
        """Record a row not measured (why) and write the file."""
        self.skipped.append(reason)
        self.write()

    def finish(self, error: BaseException | None = None) -> None:
        """Close the stage: done, partial (rows skipped) or error, and write the file."""
        if error is not None:
            self.status, self.error = "error", error_line(error)
        else:
            self.status = "partial" if self.skipped else "done"
        self.write()


def run_stage(record: StageRecord, fn: Callable[[StageRecord], None]) -> StageRecord:
    """Write the record (status "running"), run `fn(record)`, then finish it; an exception becomes the
    stage's "error" (traceback printed) and the next stage still runs."""
    record.write()
    try:
        fn(record)
    except Exception as err:  # noqa: BLE001 - a failed stage is recorded, the check goes on
        traceback.print_exc()
        record.finish(err)
    else:
        record.finish()
    return record
