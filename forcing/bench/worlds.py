"""Random-input worlds of the generation/memory/train sections: preset, latent frame size, text length."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["BENCH_WORLDS", "WAN_VIDEO_FRAMES", "WAN_WORLD", "BenchWorld", "bench_world"]


@dataclass(frozen=True)
class BenchWorld:
    """Random-input world used with a preset: latent frame size, text length, training horizon."""

    preset: str
    height: int
    width: int
    text_len: int
    horizon: int  # training length in latent frames
    model_group: str  # conf/model option used by the `train` section
    overrides: tuple[tuple[str, Any], ...] = ()

    def model(self, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
        """The preset's backbone with random (Wan-initialised) weights, in eval mode."""
        from forcing.models import CausalWanModel

        with torch.device(device):
            model = CausalWanModel.from_preset(self.preset, **dict(self.overrides))
        torch.nn.init.normal_(model.head.head.weight, std=0.02)  # Wan zero-initialises the output head
        return model.to(dtype=dtype).eval()


BENCH_WORLDS: dict[str, BenchWorld] = {
    "tiny": BenchWorld("tiny", 8, 8, 8, 6, "tiny", (("in_dim", 3), ("out_dim", 3))),
    "shapes": BenchWorld("shapes", 32, 32, 24, 12, "shapes"),
}
#: Wan2.1-T2V-1.3B at 832x480, 81 video frames: 21 latent frames of 60x104 (VAE stride 4x8x8), UMT5 512 tokens
WAN_WORLD = BenchWorld("wan2.1-t2v-1.3b", 60, 104, 512, 21, "wan_1_3b")
WAN_VIDEO_FRAMES = 81


def bench_world(args: argparse.Namespace) -> BenchWorld:
    """The world of `--preset` (exits with a message for a preset that has none)."""
    if args.preset not in BENCH_WORLDS:
        raise SystemExit(
            f"sections generation/memory/train take --preset {sorted(BENCH_WORLDS)}, not {args.preset!r}"
        )
    return BENCH_WORLDS[args.preset]
