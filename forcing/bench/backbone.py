"""Section `backbone`: masked block-causal forward vs cached streaming of the same clip."""

from __future__ import annotations

import argparse

import torch

from forcing.bench.registry import section
from forcing.bench.timing import machine, time_call

__all__ = ["bench_backbone"]


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
        f"{machine(device)}",
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
    from forcing.rollout import new_cache

    cfg = model.config
    device = next(model.parameters()).device
    x = torch.randn(batch, cfg.in_dim, frames, size, size, device=device)
    t = torch.full((batch, frames), 500.0, device=device)
    context = torch.randn(batch, text_len, cfg.text_dim, device=device)
    cache = new_cache(model, x, frames)  # the rollouts' one cache factory

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
