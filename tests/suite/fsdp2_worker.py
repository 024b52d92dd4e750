"""Run one fast step of each named experiment under FSDP2 (launched by torchrun, 2 gloo ranks).

usage: torchrun --nproc_per_node 2 tests/suite/fsdp2_worker.py OUT TMPDIR [OVERRIDE ...] -- EXPERIMENT [...]
Rank r writes {experiment: [loss of each step on rank r]} to OUT.rank<r>.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lightning_modules.launch import launch  # noqa: E402
from tests.suite.helpers import LossRecorder, compose_run, fast_overrides  # noqa: E402
from tests.suite.worker_exit import exit_cleanly  # noqa: E402


def main() -> None:
    out, tmp, *rest = sys.argv[1:]
    split = rest.index("--")
    overrides, experiments = rest[:split], rest[split + 1 :]
    losses: dict[str, list[float]] = {}
    for name in experiments:
        cfg = compose_run(
            f"experiment={name}", "hardware=cpu_fsdp2", *overrides, *fast_overrides(Path(tmp) / name)
        )
        recorder = LossRecorder()
        launch(cfg, extra_callbacks=[recorder])
        losses[name] = recorder.losses
    Path(f"{out}.rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(losses))


if __name__ == "__main__":
    main()
    exit_cleanly()
