"""Helpers of the ODE-init tests (imported as `ode_testing`): a tiny shapes-world teacher."""

from __future__ import annotations

import torch

from forcing.models import CausalWanModel

#: [C, F, H, W] of the shapes world's latents (identity codec, 12 frames of 32x32)
LATENT = (3, 12, 32, 32)
NUM_PAIRS = 6


def tiny_teacher(seed: int = 0) -> CausalWanModel:
    """`model=tiny` with a random (non-zero) output head, so that its ODE moves."""
    torch.manual_seed(seed)
    model = CausalWanModel.from_preset("tiny", in_dim=3, out_dim=3, text_dim=64, patch_size=(1, 4, 4))
    torch.nn.init.normal_(model.head.head.weight, std=0.05)
    return model.requires_grad_(False).eval()
