"""Across objectives: a few full generator/critic updates never touch the teacher (real score)."""

import pytest
import torch

from forcing.diffusion import Conditioning, Denoiser
from forcing.objectives import LossInputs, critic_parameters


@pytest.mark.parametrize("name", ["dmd", "sid", "gan"])
def test_teacher_never_changes(toys, from_config, name):
    gen, critic_net, teacher = toys.Generator(), toys.Backbone(seed=1), toys.Backbone(seed=2)
    obj = from_config(name, critic_net)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    critic, real_score = Denoiser(critic_net), Denoiser(teacher, guidance_scale=3.0)
    opt_g = torch.optim.SGD(gen.parameters(), lr=0.1)
    opt_c = torch.optim.SGD(list(critic_parameters(obj, critic)), lr=0.1)
    cond = Conditioning(torch.randn(2, 5, 4), torch.zeros(2, 5, 4))
    real = torch.randn(2, 2, 3, 2, 2) if obj.requires_real_data else None
    gen_before = gen.mix.weight.detach().clone()
    for _ in range(2):
        z = torch.randn(2, 2, 3, 2, 2)
        opt_c.zero_grad(set_to_none=True)
        obj.critic_loss(LossInputs(gen(z), cond, critic=critic, real=real))["loss"].backward()
        opt_c.step()
        opt_g.zero_grad(set_to_none=True)
        obj.generator_loss(LossInputs(gen(z), cond, real_score=real_score, critic=critic, real=real))["loss"].backward()
        opt_g.step()
        assert all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert not torch.equal(gen.mix.weight, gen_before)


@pytest.mark.parametrize("name", ["sid", "gan"])
def test_generator_loss_under_activation_checkpointing(toys, from_config, name):
    """Losses with grad through the critic / teacher work when their blocks are checkpointed."""
    gen = toys.Generator()
    critic_net, teacher = toys.Backbone(seed=1, ckpt=True), toys.Backbone(seed=2, ckpt=True)
    obj = from_config(name, critic_net)
    cond = Conditioning(torch.randn(2, 5, 4), torch.zeros(2, 5, 4))
    real = torch.randn(2, 2, 3, 2, 2)
    out = obj.generator_loss(LossInputs(
        gen(torch.randn(2, 2, 3, 2, 2)),
        cond,
        real_score=Denoiser(teacher, 3.0),
        critic=Denoiser(critic_net),
        real=real,
    ))
    out["loss"].backward()
    assert gen.mix.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in [*critic_net.parameters(), *teacher.parameters(), *obj.parameters()])


@pytest.mark.parametrize("name", ["dmd", "sid"])
def test_score_distillation_gradient_routing(toys, from_config, name):
    """Generator loss: gradient to the generator only; critic loss: to the fake score only."""
    gen, critic_net, teacher = toys.Generator(), toys.Backbone(seed=1), toys.Backbone(seed=2)
    cond = Conditioning(torch.randn(2, 5, 4), torch.zeros(2, 5, 4))
    z = torch.randn(2, 2, 3, 2, 2)
    obj = from_config(name, critic_net)
    out = obj.generator_loss(LossInputs(gen(z), cond, Denoiser(critic_net), real_score=Denoiser(teacher, 3.0)))
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert gen.mix.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in [*critic_net.parameters(), *teacher.parameters()])
    assert all(p.requires_grad for p in [*critic_net.parameters(), *teacher.parameters()])  # untouched
    gen.zero_grad(set_to_none=True)
    crit = obj.critic_loss(LossInputs(gen(z), cond, Denoiser(critic_net)))
    crit["loss"].backward()
    assert torch.isfinite(crit["loss"]) and critic_net.head.weight.grad.abs().sum() > 0
    assert gen.mix.weight.grad is None and all(p.grad is None for p in teacher.parameters())
