"""Discriminator heads on a critic trunk: learnable register tokens cross-attend the hidden states
of a few tapped blocks; their outputs are concatenated and an MLP gives one logit per sample."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def default_tap_blocks(num_layers: int) -> tuple[int, ...]:
    """Blocks at ~45 %, ~72 % and the last of ``num_layers`` (30 blocks -> (13, 21, 29), as the public code)."""
    last = num_layers - 1
    return tuple(sorted({round(0.45 * last), round(0.725 * last), last}))


def _num_heads(dim: int, head_dim: int = 128) -> int:
    heads = max(1, dim // head_dim)
    while dim % heads:
        heads -= 1
    return heads


class DiscriminatorHeads(nn.Module):
    """``forward(hidden: list of [B, N, dim]) -> logits [B]``.

    Per tapped block: ``num_registers`` learnable tokens cross-attend the block's (LayerNorm-ed)
    tokens; the ``num_taps * num_registers`` outputs are concatenated, then
    LayerNorm -> Linear(., hidden) -> SiLU -> Linear(hidden, 1).
    """

    def __init__(
        self,
        dim: int,
        num_taps: int,
        num_registers: int = 4,
        num_heads: int | None = None,
        hidden: int | None = None,
    ):
        super().__init__()
        self.dim, self.num_taps, self.num_registers = dim, num_taps, num_registers
        heads = num_heads or _num_heads(dim)
        self.registers = nn.Parameter(torch.randn(num_taps, num_registers, dim) * dim**-0.5)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(num_taps))
        self.attn = nn.ModuleList(
            nn.MultiheadAttention(dim, heads, batch_first=True) for _ in range(num_taps)
        )
        features = num_taps * num_registers * dim
        hidden = hidden or dim
        self.mlp = nn.Sequential(
            nn.LayerNorm(features), nn.Linear(features, hidden), nn.SiLU(), nn.Linear(hidden, 1)
        )

    def forward(self, hidden: Sequence[Tensor]) -> Tensor:
        if len(hidden) != self.num_taps:
            raise ValueError(f"expected {self.num_taps} hidden states, got {len(hidden)}")
        feats = []
        dtype = self.registers.dtype
        for i, h in enumerate(hidden):
            kv = self.norms[i](h.to(dtype))
            q = self.registers[i].unsqueeze(0).expand(h.shape[0], -1, -1)
            out, _ = self.attn[i](q, kv, kv, need_weights=False)  # registers cross-attend block tokens
            feats.append(out.flatten(1))
        return self.mlp(torch.cat(feats, dim=1)).squeeze(-1)
