"""Does a checkpoint know temporal order? Its flow-matching loss on the validation clips, ordered,
frame-shuffled and frozen (frame 0 repeated), at the same noise and timesteps.

    python -m experiments.learnability.order_probe CKPT [--t 200 500 900 990]

A model that has learned how objects move scores the ordered clips clearly below the shuffled ones;
where the two are equal (high noise) it does not use temporal order.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from datamodules import validation_clips
from forcing.diffusion.flow import add_noise, sigma_from_t, velocity_target
from forcing.world import prompt_for, render
from lightning_modules.loading import load_module, resolve_checkpoint


def order_losses(checkpoint: Path, timesteps: Sequence[float], seed: int = 0) -> dict[float, dict[str, float]]:
    """{t: {"ordered", "shuffled", "frozen": mean squared velocity error}} of the EMA generator."""
    module = load_module(resolve_checkpoint(checkpoint)).eval()
    w = module.cfg.world
    clips = validation_clips(module.cfg, int(w.val_size))
    video = torch.stack([render(c, int(w.num_frames), int(w.height), int(w.width)) for c in clips])
    net, out = module.sampling_generator(), {}
    with torch.no_grad():
        x0, cond = module.encode_video(video), module.condition([prompt_for(c) for c in clips])
        g = torch.Generator().manual_seed(seed)
        noise = torch.randn(x0.shape, generator=g)
        variants = {"ordered": x0, "shuffled": x0[:, :, torch.randperm(x0.shape[2], generator=g)],
                    "frozen": x0[:, :, :1].expand_as(x0)}
        for tv in timesteps:
            t = torch.full((x0.shape[0], x0.shape[2]), float(tv))  # [B, F]
            out[tv] = {}
            for name, clean in variants.items():
                v = net(add_noise(clean, noise, sigma_from_t(t)), t, cond.context, mode="bidirectional")
                out[tv][name] = float((v - velocity_target(clean, noise)).square().mean())
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Print one line per timestep."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--t", type=float, nargs="+", default=[200.0, 500.0, 800.0, 900.0, 950.0, 990.0])
    a = p.parse_args(argv)
    for t, losses in order_losses(a.checkpoint, a.t).items():
        print(f"t={t:g}\t" + "\t".join(f"{k} {v:.4f}" for k, v in losses.items()))


if __name__ == "__main__":
    main()
