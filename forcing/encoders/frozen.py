"""Base class of the frozen encoders and codecs: no gradients, always in eval mode."""

from __future__ import annotations

from torch import nn


class FrozenModule(nn.Module):
    """An `nn.Module` that stays frozen: `freeze()` turns off gradients and `train()` keeps eval mode.

    A LightningModule calling `.train()` on its children therefore never enables dropout in a
    frozen encoder, and an optimiser built over `parameters()` with `requires_grad` finds none.
    """

    def freeze(self) -> FrozenModule:
        """Disable gradients for every parameter and switch to eval mode; returns self."""
        self.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> FrozenModule:
        """Keep eval mode whatever `mode` asks (frozen modules have no training behaviour)."""
        return super().train(False)
