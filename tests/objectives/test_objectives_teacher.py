"""Across objectives: a few full generator/critic updates never touch the teacher (real score)."""

import pytest
import torch

from forcing.diffusion import Conditioning, Denoiser
from forcing.objectives import build_objective, critic_parameters


@pytest.mark.parametrize("name", ["dmd", "sid", "gan"])
def test_teacher_never_changes(toys, name):
    gen, critic_net, teacher = toys.Generator(), toys.Backbone(seed=1), toys.Backbone(seed=2)
    obj = build_objective(name, **({"dim": 8, "num_layers": 4} if name == "gan" else {}))
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
        obj.critic_loss(gen(z), cond, critic=critic, real=real)["loss"].backward()
        opt_c.step()
        opt_g.zero_grad(set_to_none=True)
        obj.generator_loss(gen(z), cond, real_score=real_score, critic=critic, real=real)["loss"].backward()
        opt_g.step()
        assert all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert not torch.equal(gen.mix.weight, gen_before)


@pytest.mark.parametrize("name", ["sid", "gan"])
def test_generator_loss_under_activation_checkpointing(toys, name):
    """Losses with grad through the critic / teacher work when their blocks are checkpointed."""
    gen = toys.Generator()
    critic_net, teacher = toys.Backbone(seed=1, ckpt=True), toys.Backbone(seed=2, ckpt=True)
    obj = build_objective(name, **({"dim": 8, "num_layers": 4} if name == "gan" else {}))
    cond = Conditioning(torch.randn(2, 5, 4), torch.zeros(2, 5, 4))
    real = torch.randn(2, 2, 3, 2, 2)
    out = obj.generator_loss(
        gen(torch.randn(2, 2, 3, 2, 2)),
        cond,
        real_score=Denoiser(teacher, 3.0),
        critic=Denoiser(critic_net),
        real=real,
    )
    out["loss"].backward()
    assert gen.mix.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in [*critic_net.parameters(), *teacher.parameters(), *obj.parameters()])
