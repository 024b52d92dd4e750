"""Speed and memory tables: ``python -m forcing.bench <section> [...]`` prints markdown.

Sections register themselves with :func:`section`; each takes the parsed arguments and returns a
markdown string. Only benchmarks time things (tests never do).

    python -m forcing.bench backbone                 # shapes preset, CPU
    python -m forcing.bench backbone --repeats 20 --threads 1
    python -m forcing.bench backbone --device cuda
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch

__all__ = ["SECTIONS", "main", "section", "time_call"]

SECTIONS: dict[str, Callable[[argparse.Namespace], str]] = {}


def section(
    name: str,
) -> Callable[[Callable[[argparse.Namespace], str]], Callable[[argparse.Namespace], str]]:
    """Register a benchmark section under `name` (a function args -> markdown)."""

    def register(fn: Callable[[argparse.Namespace], str]) -> Callable[[argparse.Namespace], str]:
        SECTIONS[name] = fn
        return fn

    return register


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(
    fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 2
) -> tuple[float, float]:
    """(median, min) wall time of `fn()` in seconds over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        what = f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} torch threads"
    return f"torch {torch.__version__}, {what}"


# ---------------------------------------------------------------------------------------------- backbone
@section("backbone")
def bench_backbone(args: argparse.Namespace) -> str:
    """Masked block-causal forward over a clip vs cached streaming of the same clip, `shapes` preset."""
    from forcing.models import CausalWanModel

    device = torch.device(args.device)
    frames, fpb, size, text_len = 12, 3, 32, 16
    model = CausalWanModel.from_preset(args.preset).to(device).eval()
    tpf = model.tokens_per_frame(size, size)
    rows = []
    for batch in args.batch:
        rows += _backbone_rows(model, batch, frames, fpb, size, text_len, args.repeats)

    lines = [
        f"### backbone: `{args.preset}` preset, {frames} frames of {size}x{size} ({tpf} tokens/frame), "
        f"{text_len} text tokens, fp32, {args.repeats} timed runs after 2 warm-up runs",
        "",
        f"{_machine(device)}",
        "",
        "| mode | batch | forwards | ms / clip (median) | ms / clip (min) | ms / forward | frames / s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {n} | {b} | {c} | {ms:.1f} | {lo:.1f} | {mf:.1f} | {fps:.0f} |"
        for n, b, c, ms, lo, mf, fps in rows
    ]
    return "\n".join(lines)


def _backbone_rows(
    model: torch.nn.Module, batch: int, frames: int, fpb: int, size: int, text_len: int, repeats: int
) -> list[tuple]:
    """Timings of the three ways to run one clip: (name, batch, forwards, median ms, min ms, ms/forward, fps)."""
    from forcing.models import KVCache

    cfg = model.config
    device = next(model.parameters()).device
    x = torch.randn(batch, cfg.in_dim, frames, size, size, device=device)
    t = torch.full((batch, frames), 500.0, device=device)
    context = torch.randn(batch, text_len, cfg.text_dim, device=device)
    cache = KVCache.for_model(model, batch, frames, model.tokens_per_frame(size, size))

    def bidirectional() -> None:
        model(x, t, context)

    def masked() -> None:
        model(x, t, context, mode="block_causal", frames_per_block=fpb)

    def cached() -> None:
        cache.reset()
        for s in range(0, frames, fpb):
            model(x[:, :, s : s + fpb], t[:, s : s + fpb], context, cache=cache, start_frame=s)

    rows = []
    for name, fn, calls in (
        ("bidirectional (reference)", bidirectional, 1),
        (f"block_causal masked ({frames // fpb} blocks x {fpb} frames, one forward)", masked, 1),
        (f"cached streaming ({frames // fpb} forwards of {fpb} frames)", cached, frames // fpb),
    ):
        with torch.inference_mode():
            sec, best = time_call(fn, device, repeats)
        rows.append((name, batch, calls, sec * 1e3, best * 1e3, sec * 1e3 / calls, batch * frames / sec))
    return rows


# ---------------------------------------------------------------------------------------------- cli
def main(argv: list[str] | None = None) -> None:
    """Command line: run the named sections (all when none is named) and print their tables."""
    parser = argparse.ArgumentParser(prog="python -m forcing.bench", description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", help=f"one or more of {sorted(SECTIONS)} (default: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--preset", default="shapes")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    unknown = [name for name in args.sections if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; available: {sorted(SECTIONS)}")
    torch.manual_seed(0)
    for name in args.sections or list(SECTIONS):
        print(SECTIONS[name](args))
        print()


if __name__ == "__main__":
    main()
