"""Toy networks with the backbone's call signature, for the objective tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from forcing.diffusion import expand_sigma, sigma_from_t
from forcing.objectives import DistributionMatching

OBJECTIVE_CONF = Path(__file__).resolve().parents[2] / "conf" / "objective"


def objective_from_config(name: str, critic_net: nn.Module, **overrides) -> DistributionMatching:
    """The objective of `conf/objective/<name>.yaml` as a paradigm builds it: instantiated from its
    `_target_` (keys overridden by `overrides`), then bound to the critic network."""
    cfg = OmegaConf.merge(OmegaConf.load(OBJECTIVE_CONF / f"{name}.yaml"), overrides)
    return instantiate(cfg, _convert_="all").bind_critic(critic_net)


class ToyBackbone(nn.Module):
    """Per-voxel MLP trunk: token embedding + context mean + time embedding, residual tanh blocks,
    linear head to a velocity; ``return_hidden`` returns block outputs ``[B, N, dim]``."""

    def __init__(
        self,
        channels: int = 2,
        dim: int = 8,
        text_dim: int = 4,
        num_layers: int = 4,
        seed: int = 0,
        ckpt: bool = False,
    ):
        super().__init__()
        self.ckpt = ckpt  # non-reentrant activation checkpointing per block, as forcing/parallel.py
        g = torch.Generator().manual_seed(seed)
        self.embed = nn.Linear(channels, dim)
        self.ctx = nn.Linear(text_dim, dim)
        self.temb = nn.Linear(1, dim)
        self.blocks = nn.ModuleList(nn.Linear(dim, dim) for _ in range(num_layers))
        self.head = nn.Linear(dim, channels)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.dim, self.num_layers = dim, num_layers
        self.config = SimpleNamespace(dim=dim, num_layers=num_layers)  # as CausalWanModel.config

    def forward(self, x, t, context, mode="bidirectional", return_hidden=(), **kwargs):
        b, c, f, h, w = x.shape
        tok = x.permute(0, 2, 3, 4, 1).reshape(b, f * h * w, c)
        tt = (t.reshape(b, 1) if t.dim() == 1 else t).float().expand(b, f) / 1000
        tt = tt.repeat_interleave(h * w, dim=1).unsqueeze(-1)
        hid = self.embed(tok) + self.ctx(context.mean(1)).unsqueeze(1) + self.temb(tt)
        hidden = []
        for i, blk in enumerate(self.blocks):
            if self.ckpt:
                hid = checkpoint(lambda h, blk=blk: h + torch.tanh(blk(h)), hid, use_reentrant=False)
            else:
                hid = hid + torch.tanh(blk(hid))
            if i in return_hidden:
                hidden.append(hid)
        v = self.head(hid).reshape(b, f, h, w, c).permute(0, 4, 1, 2, 3)
        return (v, hidden) if return_hidden else v


class X0Model(nn.Module):
    """A network whose x0 prediction is a known function g(x_t, context): v = (x_t - g) / sigma.
    Records the last input x_t. Has one dummy parameter entering the output with weight 0."""

    def __init__(self, g: Callable[[Tensor, Tensor], Tensor]):
        super().__init__()
        self.g = g
        self.dummy = nn.Parameter(torch.zeros(()))
        self.inputs: list[Tensor] = []
        self.ts: list[Tensor] = []

    def forward(self, x, t, context, **kwargs):
        self.inputs.append(x.detach().clone())
        self.ts.append(t.detach().clone())
        return (x - self.g(x, context)) / expand_sigma(sigma_from_t(t), x) + 0 * self.dummy


class ToyGenerator(nn.Module):
    """x_gen = per-channel linear map of a fixed noise tensor (a generator with parameters)."""

    def __init__(self, channels: int = 2):
        super().__init__()
        self.mix = nn.Linear(channels, channels)

    def forward(self, z: Tensor) -> Tensor:
        return self.mix(z.movedim(1, -1)).movedim(-1, 1)


@pytest.fixture
def toys():
    """Namespace of the toy classes."""
    return type("Toys", (), {"Backbone": ToyBackbone, "X0Model": X0Model, "Generator": ToyGenerator})


@pytest.fixture
def from_config() -> Callable[..., DistributionMatching]:
    """:func:`objective_from_config`: a `conf/objective/` option built as a paradigm builds it."""
    return objective_from_config
