"""The prepared GPU check: the `gpu` tests, Wan2.1-1.3B-size streaming (denoise only and end to end with
the Wan VAE), and Self Forcing DMD vs Teacher Forcing training iterations, in a fixed time budget.

    python3 -m experiments.bench.gpu_check --out runs/gpu_check            # one H100/H200 (~7 min)
    python3 -m experiments.bench.gpu_check --device cpu --tiny             # tiny sizes on CPU (seconds)

Each stage writes `<out>/<stage>.json` as it measures (rows, skipped rows, status) and the run ends
with `<out>/check.json` (machine, torch, command) and `<out>/table.md`, also printed. Random weights
everywhere; nothing is downloaded. experiments/bench/gpu_check.sh installs the carried wheels first.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from forcing.bench.stages import Budget, StageRecord, run_stage

__all__ = ["main", "parse_args"]

STAGES = ("tests", "streaming", "train")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The check's command line."""
    p = argparse.ArgumentParser(prog="python3 -m experiments.bench.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/gpu_check"), help="folder of the JSON files and table")
    p.add_argument("--device", default="cuda", help="cuda | cpu")
    p.add_argument("--tiny", action="store_true", help="tiny preset, tiny VAE, fp32 (CPU tests)")
    p.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    p.add_argument("--budget-s", type=float, default=420.0, help="time budget of the whole check (seconds)")
    p.add_argument("--tests-budget-s", type=float, default=90.0)
    p.add_argument("--streaming-budget-s", type=float, default=180.0)
    p.add_argument("--gpu-tests", nargs="+", default=["tests"], help="paths the `gpu` tests are collected from")
    p.add_argument("--long-multiple", type=int, default=10, help="long streams: x the horizon (shortened to fit)")
    p.add_argument("--repeats", type=int, default=1, help="timed streams per measurement")
    p.add_argument("--train-steps", type=int, default=3, help="timed iterations (whole generator/critic cycles)")
    return p.parse_args(None if argv is None else list(argv))


def tests_stage(args: argparse.Namespace, record: StageRecord, budget: Budget) -> None:
    """`pytest -m gpu` in a subprocess (killed at the stage's deadline): exit code and summary line."""
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", *args.gpu_tests]
    record.settings["command"] = " ".join(cmd)
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=max(budget.remaining(), 1.0))
    except subprocess.TimeoutExpired:
        record.skip(f"pytest -m gpu: killed after {budget.seconds:.0f} s")
        return
    words = ("passed", "failed", "skipped", "error", "no tests ran")
    lines = [line.strip("= ") for line in done.stdout.splitlines() if any(w in line for w in words)]
    print(done.stdout[-4000:], done.stderr[-2000:], sep="\n", flush=True)
    record.add(
        {"returncode": done.returncode, "summary": lines[-1] if lines else "", "seconds": time.perf_counter() - start}
    )


def streaming_setup(args: argparse.Namespace) -> object:
    """Backbone (Wan2.1-1.3B, bf16 on CUDA; tiny, fp32 with --tiny) and random Wan VAE on `--device`."""
    from forcing.bench.stream_check import StreamSetup
    from forcing.bench.vae import random_wan_vae
    from forcing.bench.worlds import BENCH_WORLDS, WAN_WORLD

    device = torch.device(args.device)
    world = BENCH_WORLDS["tiny"] if args.tiny else WAN_WORLD
    dtype = torch.bfloat16 if device.type == "cuda" and not args.tiny else torch.float32
    model = world.model(device, dtype)
    codec = random_wan_vae(device, dtype, z_dim=model.config.out_dim, tiny=args.tiny)
    return StreamSetup(model, codec, world, device, dtype, args.repeats)


def streaming(args: argparse.Namespace, record: StageRecord, budget: Budget) -> None:
    """The streaming stage (:func:`forcing.bench.stream_check.streaming_stage`)."""
    from forcing.bench.stream_check import streaming_stage

    setup = streaming_setup(args)
    w = setup.world
    record.settings.update(
        {"preset": w.preset, "latent": [w.horizon, w.height, w.width], "text_len": w.text_len,
         "dtype": str(setup.dtype), "long_multiple": args.long_multiple, "vae": "tiny" if args.tiny else "Wan2.1"}
    )  # fmt: skip
    streaming_stage(setup, record, budget, args.long_multiple)
    del setup
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def train(args: argparse.Namespace, record: StageRecord, budget: Budget) -> None:
    """The training stage (:func:`lightning_modules.train_check.train_stage`)."""
    from lightning_modules.train_check import train_stage

    train_stage(record, budget, args.tiny, torch.device(args.device), args.train_steps)


def machine_meta(args: argparse.Namespace, argv: Sequence[str] | None) -> dict[str, object]:
    """Device name, torch and Python versions and the command of the run."""
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "CPU")
    command = " ".join(["python3 -m experiments.bench.gpu_check", *(sys.argv[1:] if argv is None else argv)])
    return {"device_name": name, "torch": torch.__version__, "python": platform.python_version(),
            "command": command, "tiny": args.tiny, "budget_s": args.budget_s}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> dict[str, dict]:
    """Run the stages in order within the budget; write the JSON files and the table; the stage documents."""
    from experiments.bench.gpu_check_table import check_tables

    args = parse_args(argv)
    torch.manual_seed(0)
    budget, docs = Budget(args.budget_s), {}
    meta = machine_meta(args, argv)
    args.out.mkdir(parents=True, exist_ok=True)
    shares = {"tests": args.tests_budget_s, "streaming": args.streaming_budget_s, "train": args.budget_s}
    stages = {"tests": tests_stage, "streaming": streaming, "train": train}
    for name in (s for s in STAGES if s in args.stages):
        share = budget.share(shares[name])
        record = StageRecord(args.out, name, {"budget_s": share.seconds})
        docs[name] = run_stage(record, lambda r, fn=stages[name], b=share: fn(args, r, b)).to_dict()
    meta["seconds"] = budget.seconds - budget.remaining()
    (args.out / "check.json").write_text(json.dumps({**meta, "stages": docs}, indent=2) + "\n")
    table = check_tables(meta, docs)
    (args.out / "table.md").write_text(table + "\n")
    print(table, flush=True)
    return docs


if __name__ == "__main__":
    main()
