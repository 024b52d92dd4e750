"""Speed and memory tables: ``python -m forcing.bench <section> [...]`` prints markdown.

Sections register themselves with :func:`section`; each takes the parsed arguments and returns a
markdown string. Only benchmarks time things (tests never do).

    python -m forcing.bench backbone                 # shapes preset, CPU
    python -m forcing.bench backbone --repeats 20 --threads 1
    python -m forcing.bench backbone --device cuda
    python -m forcing.bench generation memory        # streaming speed, flat memory
    python -m forcing.bench --tiny                   # every section on the tiny preset (seconds; tests)
    python -m forcing.bench official --official ~/Self-Forcing --threads 1   # vs the official code

The `train` section (training iterations of every experiment) needs the Lightning modules and the
Hydra configs, which the library never imports: ``python -m lightning_modules.bench`` registers it
and runs this command line with it (same flags).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch

from forcing.bench.registry import SECTIONS
from forcing.bench.worlds import BENCH_WORLDS

__all__ = ["PROG", "main", "parse_args"]


PROG = "python -m forcing.bench"


def parse_args(argv: Sequence[str] | None = None, prog: str = PROG) -> argparse.Namespace:
    """The command line of `python -m forcing.bench` (`--tiny`: every section small and fast).

    Sections are those registered when it is called (`prog` names the command in help and errors).
    """
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", help=f"one or more of {sorted(SECTIONS)} (default: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--preset", default="shapes", help=f"backbone: any preset; other sections: {sorted(BENCH_WORLDS)}"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--gen-repeats", type=int, default=3, help="timed streams per generation row")
    parser.add_argument("--many-steps", type=int, default=32, help="Euler steps of the many-step generator")
    parser.add_argument(
        "--multiples", type=int, nargs="+", default=[1, 5, 20], help="memory: x training length"
    )
    parser.add_argument(
        "--official", default=None, help="official: a local clone of github.com/guandeh17/Self-Forcing"
    )
    parser.add_argument("--official-frames", type=int, default=12, help="official: latent frames per stream")
    parser.add_argument(
        "--official-window", type=int, default=6, help="official: frames of the rolling KV-cache row"
    )
    # the train section's flags (python -m lightning_modules.bench), parsed by both commands
    parser.add_argument("--train-steps", type=int, default=3, help="train: timed iterations per experiment")
    parser.add_argument("--train-batch", type=int, default=2, help="train: clips per training iteration")
    parser.add_argument(
        "--experiments", nargs="+", default=None, help="train: these experiments (default: all)"
    )
    parser.add_argument("--tiny", action="store_true", help="tiny preset, 1 repeat, 1 training step")
    args = parser.parse_args(None if argv is None else list(argv))
    if args.tiny:
        args.preset, args.repeats, args.gen_repeats, args.train_steps, args.batch = "tiny", 1, 1, 1, [1]
        args.many_steps = 8
    unknown = [name for name in args.sections if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; available: {sorted(SECTIONS)}")
    return args


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> None:
    """Command line: run the named sections (all registered ones when none is named), print their tables."""
    args = parse_args(argv, prog)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for name in args.sections or list(SECTIONS):
        print(SECTIONS[name](args), flush=True)
        print()
