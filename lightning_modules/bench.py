"""The benchmark with the `train` section: ``python -m lightning_modules.bench [sections...] [flags]``.

Section `train`: training iteration time of every experiment's paradigm on the same backbone and
batch. It needs the paradigms (Lightning modules) and the Hydra configs, so it lives here rather
than in the library's :mod:`forcing.bench`, which it extends: importing this module registers the
section next to the library's (backbone, generation, memory), and :func:`main` runs them all with
the same flags (``python -m forcing.bench`` runs the library's sections only).

    python -m lightning_modules.bench                # every section: backbone, generation, memory, train
    python -m lightning_modules.bench train --threads 1
    python -m lightning_modules.bench train --tiny --experiments teacher_forcing
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from forcing.bench import cli
from forcing.bench.markdown import md_row
from forcing.bench.registry import section
from forcing.bench.timing import machine, sync
from forcing.bench.worlds import bench_world
from lightning_modules.artifacts import compose_experiment
from lightning_modules.launch import paradigm_class
from lightning_modules.validation import CONF

__all__ = [
    "bench_train",
    "discover_experiments",
    "iteration_note",
    "main",
    "quiet_lightning",
    "step_timer",
    "time_training",
    "timed_steps",
    "train_row",
]

PROG = "python -m lightning_modules.bench"


def discover_experiments(conf_dir: Path = CONF) -> list[str]:
    """Every experiment of `conf/experiment/*.yaml` (new paradigms appear there over time)."""
    return sorted(p.stem for p in (conf_dir / "experiment").glob("*.yaml"))


def step_timer(device: torch.device) -> Any:
    """A Lightning callback timing each training iteration (forward, backward, optimiser step): `.times`."""
    import lightning as L

    class StepTimer(L.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._start = 0.0

        def on_train_batch_start(self, *args: Any) -> None:
            sync(device)
            self._start = time.perf_counter()

        def on_train_batch_end(self, *args: Any) -> None:
            sync(device)
            self.times.append(time.perf_counter() - self._start)

    return StepTimer()


def time_training(cfg: Any, steps: int, device: torch.device, root: Path) -> tuple[str, list[float]]:
    """(paradigm class, seconds per timed iteration): one epoch of 1 warm-up + `steps` batches, plain Trainer.

    Prerequisites (teacher, initialised generator, ODE pairs) are not prepared: paradigms that fall
    back to random weights without them are timed as such; those that cannot be built raise.
    """
    import lightning as L

    cls = paradigm_class(cfg)
    cls.validate_config(cfg)
    L.seed_everything(int(cfg.seed), verbose=False)
    timer = step_timer(device)
    trainer = L.Trainer(
        accelerator=cfg.hardware.accelerator,
        devices=1,
        precision=cfg.hardware.precision,
        max_epochs=1,
        max_steps=-1,  # manual-optimisation paradigms count every optimiser's step
        limit_train_batches=1 + steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[timer],
        default_root_dir=str(root),
        use_distributed_sampler=False,
    )
    trainer.fit(cls(cfg), datamodule=cls.build_datamodule(cfg))
    if len(timer.times) != 1 + steps:
        raise RuntimeError(f"expected {1 + steps} training iterations, timed {len(timer.times)}")
    return cls.__name__, timer.times[1:]


def timed_steps(p: Any, steps: int) -> int:
    """`steps` rounded up to whole generator/critic cycles (`paradigm.ratio`), so the mean is fair."""
    cycle = int(p.get("ratio") or 1) if p.get("stage") != "grpo" else 1
    return -(-steps // cycle) * cycle


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's loggers at ERROR and warnings ignored inside the block (benchmark output stays a table)."""
    import logging
    import warnings

    import lightning.pytorch  # noqa: F401 - sets its loggers' levels on import; quieten them after

    quiet = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)


def iteration_note(p: Any) -> str:
    """What one iteration of a paradigm does when it is not a single loss: stage, critic/generator ratio."""
    if p.get("stage") == "grpo":
        return "GRPO stage: rollouts + reward + clipped policy update"
    if p.get("ratio"):
        ratio = int(p.ratio)
        if ratio == 1:
            return "generator and critic step every iteration"
        return (
            f"critic steps every iteration, generator every {ratio}th (timed in whole cycles: use the mean)"
        )
    return ""


def train_row(name: str, args: argparse.Namespace, device: torch.device, root: Path) -> str:
    """One markdown row: the training iteration time of experiment `name` (raises if it cannot be built)."""
    world = bench_world(args)
    cfg = compose_experiment(
        name,
        "pretrained=none",  # the architecture's speed at the bench world's size, without the shipped base
        f"model={world.model_group}",
        f"hardware={'gpu' if device.type == 'cuda' else 'cpu'}",
        f"world.batch_size={args.train_batch}",
        f"paths.runs={root}/runs",
        "callbacks.samples_every_n_steps=0",
    )
    p = cfg.paradigm
    paradigm, times = time_training(cfg, timed_steps(p, args.train_steps), device, root)
    med, mean = statistics.median(times), statistics.fmean(times)
    note = iteration_note(p)
    return md_row(
        name, paradigm, p.frames_per_block, device.type, cfg.hardware.precision,
        f"{args.train_batch} x {cfg.world.num_frames}", len(times), f"{mean * 1e3:.0f}", f"{med * 1e3:.0f}",
        f"{min(times) * 1e3:.0f}", f"{args.train_batch / mean:.2f}", note,
    )


@section("train")
def bench_train(args: argparse.Namespace) -> str:
    """Training iteration time of every experiment's paradigm on the same backbone and batch."""
    import tempfile

    device, world = torch.device(args.device), bench_world(args)
    rows, skipped = [], []
    with tempfile.TemporaryDirectory() as tmp, quiet_lightning():
        for name in args.experiments or discover_experiments():
            try:
                rows.append(train_row(name, args, device, Path(tmp)))
            except Exception as err:  # noqa: BLE001 - a module that cannot be built is a note, not a crash
                reason = (str(err).splitlines() or [""])[0][:200]
                skipped.append(f"- `{name}`: skipped ({type(err).__name__}: {reason})")
    lines = [
        f"### train: one iteration (forward, backward, optimiser step(s); data loading excluded) per experiment "
        f"of `conf/experiment`, `model={world.model_group}`, batch {args.train_batch}, random weights "
        f"(prerequisites such as teachers are not prepared); {args.train_steps} timed iterations after 1 warm-up "
        "(rounded up to whole generator/critic cycles)",
        "",
        machine(device),
        "",
        "| experiment | paradigm | frames / block | device | precision | batch x latent frames | iterations "
        "| ms / iteration (mean) | ms (median) | ms (min) | clips / s | notes |",
        "|---|---|---:|---|---|---|---:|---:|---:|---:|---:|---|",
        *rows,
    ]
    if skipped:
        lines += ["", "Not built (noted, not timed):", *skipped]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: the library's sections and `train`, run by :func:`forcing.bench.cli.main`."""
    cli.main(argv, prog=PROG)


if __name__ == "__main__":
    main()
