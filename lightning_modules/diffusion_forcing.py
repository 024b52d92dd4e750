"""Diffusion Forcing (REFERENCE §3): noisy sequence, block-causal mask, independent noise level
per block. The context is noisy in training but clean at inference (Causal Forcing Prop. 3.4
explains why this mismatch makes DF worse than TF for AR diffusion)."""

from __future__ import annotations

from lightning_modules.denoising import DenoisingModule


class DiffusionForcing(DenoisingModule):
    """Diffusion Forcing paradigm."""

    mode = "block_causal"
