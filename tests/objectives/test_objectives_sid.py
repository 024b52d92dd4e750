"""SiD: value and gradient through x_t on known scores; no gradient to critic or teacher."""

import pytest
import torch

from forcing.diffusion import Conditioning, Denoiser, sigma_from_t
from forcing.objectives import LossInputs, SiD


def g_real(x, ctx):
    return 0.5 * x + 1.0


def g_fake(x, ctx):
    return 0.3 * x - 0.2


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_sid_value_and_gradient_through_scores(toys, alpha):
    real, fake = toys.X0Model(g_real), toys.X0Model(g_fake)
    x_gen = torch.randn(2, 2, 3, 2, 2, dtype=torch.float64).requires_grad_()
    cond = Conditioning(torch.ones(2, 3, 4))
    out = SiD(alpha=alpha).generator_loss(LossInputs(x_gen, cond, real_score=Denoiser(real), critic=Denoiser(fake)))
    out["loss"].backward()
    # rebuild the same loss by hand as a function of x: x_t = (1 - s) x + s eps, eps recovered from x_t
    x_t, t = fake.inputs[-1], fake.ts[-1]
    s = sigma_from_t(t).reshape(-1, 1, 1, 1, 1).double()
    x = x_gen.detach().clone().requires_grad_()
    eps = (x_t - (1 - s) * x.detach()) / s
    xt = (1 - s) * x + s * eps
    r, f = g_real(xt, None), g_fake(xt, None)
    norm = (x - r).abs().mean(dim=(1, 2, 3, 4), keepdim=True).detach()
    manual = (((r - f) * (f - x) + (1 - alpha) * (r - f) ** 2) / norm).mean()
    manual.backward()
    assert out["loss"].item() == pytest.approx(manual.item(), rel=1e-6)
    assert torch.allclose(x_gen.grad, x.grad, rtol=1e-6)
    # the gradient also flows through x_t (differs from the direct-only term)
    direct = (((r - f).detach() * -1) / norm).detach() / x.numel()
    assert not torch.allclose(x_gen.grad, direct, atol=1e-6)


def test_sid_zero_when_scores_agree(toys):
    net = toys.X0Model(g_real)
    x = torch.randn(2, 2, 3, 2, 2)
    out = SiD().generator_loss(LossInputs(
        x, Conditioning(torch.ones(2, 3, 4)), real_score=Denoiser(net), critic=Denoiser(net)
    ))
    assert out["loss"].item() == pytest.approx(0.0, abs=1e-7)
