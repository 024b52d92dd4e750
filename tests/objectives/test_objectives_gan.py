"""GAN: relativistic pairing signs, finite-difference R1/R2, heads, gradient routing."""

import pytest
import torch

from forcing.diffusion import Conditioning, Denoiser
from forcing.objectives import (
    DMD,
    DiscriminatorHeads,
    GANObjective,
    LossInputs,
    SiD,
    default_tap_blocks,
    finite_difference_penalty,
    relativistic_loss,
)


def _setup(toys, b=2):
    gen, critic_net = toys.Generator(), toys.Backbone(num_layers=4, seed=1)
    cond = Conditioning(torch.randn(b, 5, 4))
    z, real = torch.randn(b, 2, 3, 2, 2), torch.randn(b, 2, 3, 2, 2)
    obj = GANObjective(num_registers=2).bind_critic(critic_net)
    return obj, gen, critic_net, cond, z, real


def test_tap_blocks_default_and_config(toys, from_config):
    assert default_tap_blocks(30) == (13, 21, 29)
    assert default_tap_blocks(4) == (1, 2, 3)
    assert default_tap_blocks(40)[-1] == 39 and len(default_tap_blocks(40)) == 3
    critic_net = toys.Backbone(dim=8, num_layers=4)
    obj = from_config("gan", critic_net)
    assert isinstance(obj, GANObjective) and obj.tap_blocks == (1, 2, 3)
    assert obj.heads.registers.shape[-1] == 8 and obj.num_registers == 4  # sized to the critic by bind_critic
    assert obj.requires_real_data and obj.critic_kind == "discriminator"
    assert (obj.name, obj.t_from_exit_step, obj.real_guidance_scale, obj.r_lambda) == ("gan", True, 1.0, 30.0)
    assert from_config("gan", critic_net, tap_blocks=[0, 3]).tap_blocks == (0, 3)
    dmd, sid = from_config("dmd", critic_net), from_config("sid", critic_net, alpha=0.5)
    assert type(dmd) is DMD and not dmd.requires_real_data and dmd.real_guidance_scale == 4.0
    assert type(sid) is SiD and sid.critic_kind == "score" and sid.alpha == 0.5
    assert not any(True for _ in dmd.parameters())  # bind_critic builds nothing for a score critic
    with pytest.raises(RuntimeError, match="bind_critic"):
        GANObjective().discriminate(None, [torch.zeros(1)], torch.zeros(1), None)


def test_relativistic_sign():
    hi, lo = torch.tensor([2.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert relativistic_loss(hi, lo) < relativistic_loss(lo, hi)  # D prefers real -> lower D loss
    assert relativistic_loss(hi, lo).item() == pytest.approx(
        torch.nn.functional.softplus(-torch.tensor([3.0, 3.0])).mean().item()
    )


def test_objective_orientation(toys, monkeypatch):
    obj, gen, critic_net, cond, z, real = _setup(toys)
    real_logit, fake_logit = torch.full((2,), 3.0), torch.full((2,), -3.0)

    def fake_discriminate(critic, xs, t, cond):
        # inputs are ordered [real, fake, real + sigma eps, fake + sigma eps] or singletons
        return [real_logit if x.data_ptr() == id_real[0] else fake_logit for x in xs]

    id_real = [None]
    orig = obj.noisy_pair

    def noisy_pair(*a, **k):
        fake_t, real_t = orig(*a, **k)
        id_real[0] = real_t.data_ptr()
        return fake_t, real_t

    monkeypatch.setattr(obj, "noisy_pair", noisy_pair)
    monkeypatch.setattr(obj, "discriminate", fake_discriminate)
    d = obj.critic_loss(LossInputs(gen(z), cond, critic=Denoiser(critic_net), real=real))
    g = obj.generator_loss(LossInputs(gen(z), cond, critic=Denoiser(critic_net), real=real))
    sp = torch.nn.functional.softplus
    assert d["d_loss"].item() == pytest.approx(sp(torch.tensor(-6.0)).item(), rel=1e-5)
    assert g["loss"].item() == pytest.approx(sp(torch.tensor(6.0)).item(), rel=1e-5)


def test_finite_difference_penalty_zero_for_constant_d(toys):
    obj, gen, critic_net, cond, z, real = _setup(toys)
    out = obj.critic_loss(LossInputs(gen(z), cond, critic=Denoiser(critic_net), real=real))
    assert out["r1"] > 0 and out["r2"] > 0
    with torch.no_grad():
        obj.heads.mlp[-1].weight.zero_()  # logit = bias: D is constant
    const = obj.critic_loss(LossInputs(gen(z), cond, critic=Denoiser(critic_net), real=real))
    assert const["r1"].item() == 0.0 and const["r2"].item() == 0.0
    assert finite_difference_penalty(torch.ones(3), torch.ones(3)).item() == 0.0


def test_heads_shape_and_concat_equivalence(toys):
    heads = DiscriminatorHeads(dim=8, num_taps=3, num_registers=2)
    assert heads([torch.randn(5, 7, 8)] * 3).shape == (5,)
    obj, gen, critic_net, cond, z, real = _setup(toys)
    x1, x2, t = torch.randn(2, 2, 3, 2, 2), torch.randn(2, 2, 3, 2, 2), torch.tensor([300.0, 700.0])
    together = obj.discriminate(Denoiser(critic_net), [x1, x2], t, cond)
    obj.concat_forwards = False
    apart = obj.discriminate(Denoiser(critic_net), [x1, x2], t, cond)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(together, apart))


def test_gan_gradient_routing_and_t_range(toys):
    obj, gen, critic_net, cond, z, real = _setup(toys)
    critic = Denoiser(critic_net)
    with pytest.raises(ValueError):
        obj.generator_loss(LossInputs(gen(z), cond, critic=critic))
    out = obj.generator_loss(LossInputs(gen(z), cond, critic=critic, real=real, t_range=(600.0, 700.0)))
    assert torch.isfinite(out["loss"]) and 600 <= out["generator_t"].item() <= 700
    out["loss"].backward()
    assert gen.mix.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in [*critic_net.parameters(), *obj.parameters()])
    assert all(p.requires_grad for p in [*critic_net.parameters(), *obj.parameters()])
    gen.zero_grad(set_to_none=True)
    crit = obj.critic_loss(LossInputs(gen(z), cond, critic=critic, real=real, t_range=(600.0, 700.0)))
    assert torch.isfinite(crit["loss"])
    crit["loss"].backward()
    assert gen.mix.weight.grad is None
    assert critic_net.blocks[0].weight.grad.abs().sum() > 0
    assert obj.heads.registers.grad.abs().sum() > 0 and obj.heads.mlp[-1].weight.grad.abs().sum() > 0


def test_critic_loss_regulariser_has_the_half_of_eq_5(toys, monkeypatch):
    """Self Forcing eq. 5 (REFERENCE §3): L_reg = 1/2 (||D(x_t) - D(x_t + sigma eps)||^2 on real +
    the same on fake), weighted by lambda = 30; was lambda (R1 + R2), twice the paper's."""
    obj, gen, critic_net, cond, z, real = _setup(toys)
    logits = [torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.5]), torch.tensor([1.5, 1.0]), torch.tensor([0.0, 0.5])]
    monkeypatch.setattr(obj, "discriminate", lambda critic, xs, t, cond: logits)  # [real, fake, real_p, fake_p]
    out = obj.critic_loss(LossInputs(gen(z), cond, critic=Denoiser(critic_net), real=real))
    d_real, d_fake, d_real_p, d_fake_p = logits
    d_loss = torch.nn.functional.softplus(-(d_real - d_fake)).mean().item()
    r1 = ((0.5**2 + 1.0**2) / 2)  # mean (D(real_t) - D(real_t + sigma eps))^2
    r2 = ((1.0**2 + 0.0**2) / 2)  # mean (D(fake_t) - D(fake_t + sigma eps))^2
    assert out["r1"].item() == pytest.approx(r1) and out["r2"].item() == pytest.approx(r2)
    assert out["r_reg"].item() == pytest.approx(0.5 * (r1 + r2))
    assert obj.r_lambda == 30.0
    assert out["loss"].item() == pytest.approx(d_loss + 30.0 * 0.5 * (r1 + r2))
