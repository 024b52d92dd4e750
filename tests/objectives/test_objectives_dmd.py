"""DMD: the gradient w.r.t. the generated video on a toy with known scores; gradient routing."""

import pytest
import torch

from forcing.diffusion import Conditioning, Denoiser, cfg, sigma_from_t
from forcing.objectives import DMD, LossInputs


def _bcast(ctx):
    return ctx.mean(dim=(1, 2)).reshape(-1, 1, 1, 1, 1)


def g_real(x, ctx):  # real-score x0: depends on the prompt, so CFG matters
    return 0.5 * x + _bcast(ctx)


def g_fake(x, ctx):
    return 0.3 * x - 0.2


def test_dmd_gradient_is_normalised_score_difference(toys):
    real, fake = toys.X0Model(g_real), toys.X0Model(g_fake)
    cond = Conditioning(torch.ones(2, 3, 4), torch.zeros(1, 3, 4))
    x_gen = torch.randn(2, 2, 3, 4, 4).requires_grad_()
    out = DMD().generator_loss(LossInputs(
        x_gen,
        cond,
        real_score=Denoiser(real, guidance_scale=4.0),
        critic=Denoiser(fake),
        generator=torch.Generator().manual_seed(0),
    ))
    assert out["loss"].dtype == torch.float64
    out["loss"].backward()
    x_t, t = fake.inputs[-1], fake.ts[-1]
    assert t.shape == (2,) and bool(((t >= 20) & (t <= 980)).all())
    assert torch.equal(real.inputs[-1], torch.cat([x_t, x_t]))  # one CFG forward over [cond; uncond]
    ctx = torch.ones(2, 3, 4)
    f_real = cfg(g_real(x_t, ctx), g_real(x_t, 0 * ctx), 4.0)
    f_fake = g_fake(x_t, ctx)
    x = x_gen.detach()
    norm = (x - f_real).abs().mean(dim=(1, 2, 3, 4), keepdim=True)
    expected = (f_fake - f_real) / norm / x.numel()
    assert torch.allclose(x_gen.grad, expected, rtol=1e-3, atol=1e-9)
    # the loss value: 0.5 mean(grad^2)
    assert out["loss"].item() == pytest.approx(
        0.5 * float(((f_fake - f_real) / norm).pow(2).mean()), rel=1e-3
    )


def test_dmd_t_range_and_per_frame(toys):
    fake = toys.X0Model(g_fake)
    x = torch.randn(3, 2, 4, 2, 2)
    cond = Conditioning(torch.ones(3, 3, 4))
    DMD(per_frame=True).generator_loss(LossInputs(
        x, cond, real_score=Denoiser(toys.X0Model(g_real)), critic=Denoiser(fake), t_range=(600.0, 700.0)
    ))
    t = fake.ts[-1]
    assert t.shape == (3, 4) and bool(((t >= 600) & (t <= 700)).all())


def test_dmd_critic_loss_zero_for_exact_fake_score(toys):
    x_gen = torch.randn(2, 2, 3, 2, 2)

    class PointMass(torch.nn.Module):  # exact flow-matching velocity for data = x_gen
        def forward(self, x, t, context, **kw):
            return (x - x_gen) / sigma_from_t(t).reshape(-1, 1, 1, 1, 1)

    crit = DMD().critic_loss(LossInputs(x_gen, Conditioning(torch.ones(2, 3, 4)), critic=Denoiser(PointMass())))
    assert crit["loss"].item() == pytest.approx(0.0, abs=1e-8)


def test_dmd_t_is_drawn_over_0_1000_then_shifted_then_clamped():
    """REFERENCE §3 ("a shifted t clamped to [20, 980]") and the public code (model/dmd.py: randint(0, 1000),
    shift 5, clamp(20, 980)): the smallest t is 20. Drawing from [20, 980) before the shift made it 92.6."""
    t = DMD().sample_t(torch.zeros(20000, 1, 1, 1, 1), generator=torch.Generator().manual_seed(0))
    assert t.min().item() == 20.0 and t.max().item() == 980.0
    low = (t < 92.5).float().mean().item()  # U{0..19} shifts below shift_t(20) = 92.6: 2% of draws
    assert 0.01 < low < 0.03
    assert (t == 20.0).float().mean().item() == pytest.approx(0.005, abs=0.002)  # t in {0..4} shift below 20
