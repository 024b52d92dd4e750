"""Self Forcing DMD on the tiny backbone under FSDP2 (2 gloo ranks, launched by torchrun): an uninterrupted
run of 3 iterations, a run of 2 (a DCP checkpoint at iteration 2) resumed with `ckpt_path=auto` to 3, and
the one-process run TMPDIR/runs/one (a checkpoint file at iteration 2) resumed to 3.

usage: torchrun --nproc_per_node 2 tests/suite/dcp_worker.py OUT TMPDIR TEACHER
Rank r writes {"full": [losses], "split": [losses before the resume], "resumed": [losses after]} to
OUT.rank<r>.json; rank 0 writes the state the one-process checkpoint restored (`RestoredState`) to
OUT.one.pt.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from lightning_modules.launch import launch  # noqa: E402
from tests.suite.helpers import LossRecorder, RestoredState, compose_run, tiny_distill_overrides  # noqa: E402
from tests.suite.worker_exit import exit_cleanly  # noqa: E402


def losses(tmp: Path, name: str, max_steps: int, teacher: Path, *extra: str, restored: RestoredState | None = None
           ) -> list[float]:  # fmt: skip
    """Train `name` to `max_steps` iterations on 2 ranks; this rank's losses."""
    recorder = LossRecorder()
    cfg = compose_run(*tiny_distill_overrides(tmp, name, max_steps, teacher, "hardware=cpu_fsdp2", *extra))
    launch(cfg, extra_callbacks=[recorder] + ([restored] if restored else []))
    return recorder.losses


def main() -> None:
    out, tmp, teacher = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    result = {
        "full": losses(tmp, "full", 3, teacher),
        "split": losses(tmp, "split", 2, teacher),
        "resumed": losses(tmp, "split", 3, teacher, "ckpt_path=auto"),
    }
    rank = os.environ.get("RANK", "0")
    Path(f"{out}.rank{rank}.json").write_text(json.dumps(result))
    restored = RestoredState()
    losses(tmp, "one", 3, teacher, "ckpt_path=auto", restored=restored)
    if rank == "0":
        torch.save({k: getattr(restored, k) for k in ("params", "optimizers", "orders")}, f"{out}.one.pt")


if __name__ == "__main__":
    main()
    exit_cleanly()
